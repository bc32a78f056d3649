"""Connections to one PostgreSQL target that fail fast and recover at once.

Why not ``psycopg_pool``: its background worker reconnects with exponential back-off, so
while a server is down every call blocks until the pool's timeout (30 s by default) and
raises ``PoolTimeout``, and after the server returns the first call may wait for the
worker's next try (measured: 21.6 s after a 34 s outage), with pool warnings on stderr.
A search service wants the opposite: a call that cannot connect fails at once with
:class:`~colrank.errors.StoreUnavailableError`, and the next call simply tries again. So
this pool keeps idle connections, drops any that broke, and connects on demand in the
caller's thread, bounded by libpq's ``connect_timeout``.

Example:
    >>> Connections("postgresql://127.0.0.1:1/x", connect_timeout=2).where
    '127.0.0.1:1/x'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from colrank.errors import StoreUnavailableError


def where(url: str) -> str:
    """The hosts and database of a libpq URL, without user or password (for messages)."""
    rest = url.split("://", 1)[-1]
    return rest.split("@")[-1].split("?")[0]


class Connections:
    """A bounded set of connections to one libpq target.

    Args:
        url: a libpq URL (several ``host:port`` pairs are allowed).
        size: connections open at most (callers beyond it wait for one to come back).
        connect_timeout: seconds a connection attempt may take (libpq's minimum is 2).
        configure: called once on each new connection (types, settings).
        attrs: extra libpq parameters, e.g. ``{"target_session_attrs": "read-write"}``.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int = 4,
        connect_timeout: float = 3.0,
        configure: Callable[[Any], None] | None = None,
        attrs: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.where = where(url)
        self.connect_timeout = max(2, round(connect_timeout))
        self._configure = configure
        self._attrs = dict(attrs or {})
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(
                self.url,
                connect_timeout=self.connect_timeout,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=2,
                **self._attrs,
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {self.where}: {_first_line(exc)}"
            ) from exc
        try:
            if self._configure is not None:
                self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _take(self) -> Any:
        with self._lock:
            if self._closed:
                raise StoreUnavailableError(f"the connections to {self.where} are closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
                conn.close()
        return self._connect()

    def _give_back(self, conn: Any) -> None:
        from psycopg.pq import TransactionStatus

        if conn.broken or conn.closed or self._closed:
            conn.close()
            return
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.rollback()
        with self._lock:
            self._idle.append(conn)

    @contextmanager
    def connection(self, *, timeout: float = 60.0) -> Iterator[Any]:
        """A connection for the duration of the block (given back, or dropped if it broke).

        A connection lost on the way (the server stopped, a network fault) raises
        :class:`~colrank.errors.StoreUnavailableError`; the next call connects anew.
        """
        import psycopg

        if not self._slots.acquire(timeout=timeout):
            raise StoreUnavailableError(
                f"no free connection to {self.where} within {timeout:g} s (all in use)"
            )
        try:
            conn = self._take()
            try:
                yield conn
            except psycopg.OperationalError as exc:
                if conn.broken or conn.closed:
                    raise StoreUnavailableError(
                        f"lost the connection to PostgreSQL at {self.where}: {_first_line(exc)}"
                    ) from exc
                if (exc.sqlstate or "").startswith("08"):  # a server behind it (a shard)
                    detail = exc.diag.message_detail or ""
                    raise StoreUnavailableError(
                        f"{_first_line(exc)} (through {self.where})"
                        + (f": {detail.splitlines()[0]}" if detail else "")
                    ) from exc
                raise
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every idle connection; connections in use close when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["Connections", "where"]
