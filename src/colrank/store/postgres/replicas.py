"""Writes to the primary, reads from hot standbys, and each process reads its own writes.

A collection is opened with libpq's multi-host URL, the convention every PostgreSQL
client and pooler understands::

    postgresql://user@primary:5432,standby1:5432,standby2:5432/rag

Writes connect with ``target_session_attrs=read-write`` (libpq tries the hosts until it
finds the primary); searches with ``target_session_attrs=prefer-standby`` and
``load_balance_hosts=random`` (spread over the standbys, the primary only when no
standby answers). With one host both go to that server.

**Consistency.** A standby replays the primary's WAL a little behind it, so a search on
a standby sees every write committed up to its replay point, never part of a write (a
search is one snapshot). By default (``read_your_writes=True``) a process that wrote
waits, before it searches on a standby, until the standby has replayed that process's
last commit (for at most ``replica_wait`` seconds, then it reads from the primary), so
its own writes are always visible. A write's commit position is
:attr:`Replicas.last_commit_lsn`; another process can pass it to :meth:`Replicas.observe`
to read that write too.

Example:
    >>> split_hosts("postgresql://u@a:1,b:2/db")
    ['a:1', 'b:2']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from colrank.errors import StoreUnavailableError
from colrank.store.postgres.connections import Connections


def split_hosts(url: str) -> list[str]:
    """The ``host:port`` entries of a libpq URL."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return netloc.split("@")[-1].split(",")


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class Replicas:
    """The connections of one collection: to the primary, and to its standbys if any.

    Args:
        url: a libpq URL, with several hosts for a primary and its standbys.
        size: connections per role.
        connect_timeout: seconds one connection attempt may take.
        configure: called on each new connection.
        read_your_writes: searches wait for this process's last write (see above).
        replica_wait: seconds a search waits for a standby to replay that write.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int,
        connect_timeout: float,
        configure: Callable[[Any], None],
        read_your_writes: bool = True,
        replica_wait: float = 2.0,
    ) -> None:
        self.replicated = len(split_hosts(url)) > 1
        common = {"size": size, "connect_timeout": connect_timeout, "configure": configure}
        if self.replicated:
            self.writes = Connections(url, attrs={"target_session_attrs": "read-write"}, **common)
            self.reads = Connections(
                url,
                attrs={"target_session_attrs": "prefer-standby", "load_balance_hosts": "random"},
                **common,
            )
        else:
            self.writes = self.reads = Connections(url, **common)
        self.read_your_writes = read_your_writes
        self.replica_wait = replica_wait
        self._seen = 0  # the highest commit position this process must see
        self._seen_text: str | None = None
        self._lock = threading.Lock()

    @property
    def last_commit_lsn(self) -> str | None:
        """The WAL position of this process's last write (or of one :meth:`observe` d)."""
        return self._seen_text

    def observe(self, lsn: str) -> None:
        """From now on, searches see the write committed at ``lsn`` (e.g. another process's)."""
        with self._lock:
            if _lsn(lsn) > self._seen:
                self._seen, self._seen_text = _lsn(lsn), lsn

    def committed(self, conn: Any) -> None:
        """Record the commit position after a write on ``conn`` (replicated setups only)."""
        if self.replicated:
            self.observe(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
            conn.commit()

    @contextmanager
    def read_connection(self) -> Iterator[Any]:
        """A connection for a search: a standby that replayed what it must see, or the primary.

        Raises:
            StoreUnavailableError: only standbys are reachable (or named) and none replayed
                this process's last write within ``replica_wait`` seconds.
        """
        with self.reads.connection() as conn:
            if self._caught_up(conn):
                yield conn
                return
        if not self.replicated:
            raise StoreUnavailableError(
                f"the standby at {self.reads.where} has not replayed the write at "
                f"{self._seen_text} within {self.replica_wait:g} s"
            )
        with self.writes.connection() as conn:  # the standbys are too far behind
            yield conn

    def _caught_up(self, conn: Any) -> bool:
        if not self.read_your_writes or not self._seen:
            return True
        if conn.info.parameter_status("in_hot_standby") != "on":
            return True  # the primary itself
        deadline = time.monotonic() + self.replica_wait
        while True:
            replayed = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]
            conn.commit()
            if replayed is not None and _lsn(replayed) >= self._seen:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)  # a standby replays within milliseconds on a healthy link

    def close(self) -> None:
        """Close every connection."""
        self.writes.close()
        if self.reads is not self.writes:
            self.reads.close()


__all__ = ["Replicas", "split_hosts"]
