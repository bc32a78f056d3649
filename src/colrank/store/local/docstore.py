"""Document texts and metadata, kept in SQLite beside the vectors.

The store lives in memory while an index is in use and is copied to/from a file
with SQLite's online backup API on save/load, so a loaded index returns full
documents and metadata filters run as SQL (:mod:`colrank.store.filters`).

Example:
    >>> store = DocStore()
    >>> store.add([0], ["d1"], ["hello"], [{"lang": "en"}])
    >>> store.get([0])[0].text
    'hello'
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colrank.errors import CorruptIndexError
from colrank.store.base import StoredDoc
from colrank.store.filters import Filter, check_kinds, compile_filter, sqlite_kind_probe
from colrank.store.local.files import read_bytes

DOCS_FILE = "docs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    iid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL
)
"""


class DocStore:
    """Texts and metadata keyed by internal id, with a unique user id."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(_SCHEMA)
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def add(
        self,
        iids: Sequence[int],
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        *,
        replacing: Sequence[int] = (),
    ) -> None:
        """Insert documents, removing ``replacing`` internal ids first, in one transaction."""
        rows = [
            (int(i), d, t, json.dumps(m, ensure_ascii=False))
            for i, d, t, m in zip(iids, ids, texts, metadatas, strict=True)
        ]
        with self._lock, self._conn:
            self._conn.executemany("DELETE FROM docs WHERE iid = ?", [(int(i),) for i in replacing])
            self._conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", rows)

    def delete(self, iids: Sequence[int]) -> None:
        """Remove documents by internal id."""
        with self._lock, self._conn:
            self._conn.executemany("DELETE FROM docs WHERE iid = ?", [(int(i),) for i in iids])

    def iids_for(self, ids: Sequence[str]) -> dict[str, int]:
        """Map user ids to internal ids (unknown ids are left out)."""
        found: dict[str, int] = {}
        with self._lock:
            for chunk in _chunks(list(ids), 500):
                marks = ",".join("?" for _ in chunk)
                query = f"SELECT id, iid FROM docs WHERE id IN ({marks})"  # noqa: S608
                found.update(self._conn.execute(query, chunk).fetchall())
        return found

    def get(self, iids: Sequence[int]) -> list[StoredDoc]:
        """Documents for the given internal ids, in that order."""
        by_iid: dict[int, StoredDoc] = {}
        with self._lock:
            for chunk in _chunks([int(i) for i in iids], 500):
                marks = ",".join("?" for _ in chunk)
                query = f"SELECT iid, id, text, metadata FROM docs WHERE iid IN ({marks})"  # noqa: S608
                for iid, doc_id, text, meta in self._conn.execute(query, chunk):
                    by_iid[iid] = StoredDoc(iid, doc_id, text, json.loads(meta))
        return [by_iid[int(i)] for i in iids]

    def ids(self) -> list[str]:
        """Every user id, in insertion order."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM docs ORDER BY iid")]

    def all_iids(self) -> list[int]:
        """Every internal id, ascending."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT iid FROM docs ORDER BY iid")]

    def all_texts(self) -> tuple[list[int], list[str]]:
        """Every ``(internal id, text)``, ascending by id (for rebuilding BM25)."""
        with self._lock:
            rows = self._conn.execute("SELECT iid, text FROM docs ORDER BY iid").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def matching_iids(self, spec: Filter) -> list[int]:
        """Internal ids of the documents whose metadata match a filter."""
        where, params = compile_filter(spec)
        with self._lock:
            check_kinds(spec, self._holds)
            query = f"SELECT iid FROM docs WHERE {where} ORDER BY iid"  # noqa: S608
            return [r[0] for r in self._conn.execute(query, params)]

    def _holds(self, field: str, kinds: tuple[str, ...]) -> bool:
        sql, params = sqlite_kind_probe(field, kinds)
        return self._conn.execute(sql, params).fetchone() is not None

    def save(self, directory: Path) -> list[str]:
        """Write the store to ``directory / docs.sqlite``, compacted (``VACUUM INTO``).

        The file holds live rows only: its size follows the documents, not their history.
        """
        with self._lock:
            self._conn.execute("VACUUM INTO ?", (str(directory / DOCS_FILE),))
        return [DOCS_FILE]

    @classmethod
    def load(cls, directory: Path) -> DocStore:
        """Read ``directory / docs.sqlite`` into memory.

        The file is read through :mod:`colrank.store.local.files` (a regular file in the
        snapshot, no link) and handed to SQLite as bytes: SQLite opens no path of its own.
        """
        store = cls()
        try:
            data = read_bytes(directory, DOCS_FILE)
            store._conn.deserialize(data)
            _check_schema(store._conn, directory)  # before any query touches its objects
            store._conn.execute("SELECT iid, id, text, metadata FROM docs LIMIT 1").fetchall()
        except (sqlite3.DatabaseError, OverflowError) as exc:
            raise CorruptIndexError(f"document store in {directory} is unreadable: {exc}") from exc
        return store


def _check_schema(conn: sqlite3.Connection, directory: Path) -> None:
    """Refuse a document store holding anything but colrank's table (views, triggers...).

    Reading ``sqlite_master`` runs nothing; a view or trigger could (a recursive view can
    hang a query, a trigger can change rows behind the other stores' back).
    """
    objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    allowed = {("table", "docs"), ("index", "sqlite_autoindex_docs_1")}
    unexpected = [f"{kind} {name}" for kind, name in objects if (kind, name) not in allowed]
    if unexpected or ("table", "docs") not in objects:
        raise CorruptIndexError(
            f"document store in {directory.name} is not colrank's (holds {unexpected[:3]}); refused"
        )


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


__all__ = ["DocStore"]
