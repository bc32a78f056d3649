"""Bulk loading: build a collection's search indexes once, after its rows are in.

Inserting into an HNSW graph, three postings B-trees and a foreign key row by row costs
far more than building them once at the end (pgvector's own advice for initial loads).
While a bulk load runs, the documents' HNSW and metadata indexes, the postings' indexes
(their primary key included: a document's postings are unique by construction) and the
postings' foreign key are dropped; their definitions are kept in the collection's
manifest first, so a load that dies half-way loses nothing: the next
:meth:`~colrank.store.postgres.backend.PostgresBackend.finish_bulk_load` (or bulk load)
rebuilds them. The documents' primary key and unique id stay, so upserts and deletes
keep working; searches stay correct, only slower, until the indexes are back.

On a spread collection the same happens on every shard (through ``dblink``), and the
shards rebuild their indexes at the same time.

Example:
    >>> with backend.bulk_load():                      # doctest: +SKIP
    ...     for batch in batches:
    ...         backend.write(batch)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from colrank.store.postgres.hnsw import tune_shards
from colrank.store.postgres.schema import Tables, read_manifest, update_manifest

#: the manifest key holding, per server ("" for the one server, else the shard's foreign
#: server name), the statements that rebuild what a bulk load dropped
DEFERRED = "deferred_indexes"

_DROPPABLE = """
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = '{docs}'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = '{terms}'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
UNION ALL
SELECT 'constraint', c.conname::text, pg_get_constraintdef(c.oid)
FROM pg_constraint c WHERE c.conrelid = '{terms}'::regclass AND c.contype IN ('p', 'f')
"""


def _servers(manifest: dict[str, Any]) -> list[str]:
    """Where the documents and postings live: '' (this server) or the shards' servers."""
    return [s["server"] for s in manifest.get("shards") or []] or [""]


def _run(conn: Any, server: str, sql: str) -> None:
    if server:
        conn.execute("SELECT dblink_exec(%s, %s)", [server, sql])
    else:
        conn.execute(sql)


def _droppable(conn: Any, t: Tables, server: str) -> list[tuple[str, str, str]]:
    sql = _DROPPABLE.format(docs=t.docs, terms=t.terms)
    if not server:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT * FROM dblink(%s, %s) AS r(kind text, name text, def text)", [server, sql]
        ).fetchall()
    ]


def _rebuild(kind: str, name: str, definition: str, terms: str) -> str:
    """A statement that rebuilds one dropped object, and does nothing if it exists."""
    if kind == "index":
        return definition.replace(" INDEX ", " INDEX IF NOT EXISTS ", 1)
    return (
        f"DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}' "
        f"AND conrelid = '{terms}'::regclass) THEN ALTER TABLE {terms} ADD CONSTRAINT "
        f"{name} {definition}; END IF; END$$"
    )


def defer_indexes(conn: Any, collection: str) -> bool:
    """Drop the collection's secondary indexes and the postings' keys; False if none yet.

    Their definitions are committed to the manifest first (a dropped index is never
    unrecorded); the drops follow, each idempotent.
    """
    t = Tables(collection)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank:{collection}"])
        manifest = read_manifest(conn, collection)
        if manifest is None:
            return False
        found = {server: _droppable(conn, t, server) for server in _servers(manifest)}
        recorded = dict(manifest.get(DEFERRED) or {})
        for server, rows in found.items():
            # constraints first on the way back (the primary key), then the indexes
            ordered = sorted(rows, key=lambda r: r[0] != "constraint")
            recorded[server] = [
                *recorded.get(server, []),
                *(_rebuild(kind, name, sql, t.terms) for kind, name, sql in ordered),
            ]
        update_manifest(conn, collection, {DEFERRED: recorded})
    with conn.transaction():
        for server, rows in found.items():
            for kind, name, _ in rows:
                if kind == "constraint":
                    _run(conn, server, f"ALTER TABLE {t.terms} DROP CONSTRAINT IF EXISTS {name}")
                else:
                    _run(conn, server, f"DROP INDEX IF EXISTS {name}")
    return True


def restore_indexes(conn: Any, collection: str, maintenance_work_mem: str) -> bool:
    """Rebuild what :func:`defer_indexes` dropped (every shard at once); False if nothing was.

    ``maintenance_work_mem`` should hold the HNSW graph (pgvector builds it much faster
    in memory); PostgreSQL's parallel maintenance workers are used as configured. Each
    statement is idempotent, so a restore that failed half-way can simply be run again.
    """
    t = Tables(collection)
    memory = "'" + maintenance_work_mem.replace("'", "") + "'"
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank:{collection}"])
        deferred: dict[str, list[str]] = (read_manifest(conn, collection) or {}).get(DEFERRED) or {}
        if not deferred:
            return False
        if "" in deferred:  # one server
            conn.execute(f"SET LOCAL maintenance_work_mem = {memory}")
            for statement in [*deferred[""], f"ANALYZE {t.docs}", f"ANALYZE {t.terms}"]:
                conn.execute(statement)
        else:
            _on_every_shard(conn, t, deferred, memory)
        update_manifest(conn, collection, {DEFERRED: {}})
    return True


def _on_every_shard(conn: Any, t: Tables, deferred: dict[str, list[str]], memory: str) -> None:
    """Run each shard's statements on its own ``dblink`` connection, concurrently."""
    links: list[str] = []
    try:
        with conn.transaction():  # a savepoint: after a shard's error the links still close
            for i, server in enumerate(deferred):
                conn.execute("SELECT dblink_connect(%s, %s)", [f"colrank_bulk_{i}", server])
                links.append(f"colrank_bulk_{i}")
                script = [f"SET maintenance_work_mem = {memory}", *deferred[server]]
                script += [f"ANALYZE {t.docs}", f"ANALYZE {t.terms}"]
                conn.execute("SELECT dblink_send_query(%s, %s)", [links[-1], "; ".join(script)])
            for link in links:  # one result per statement, then an empty one; raises on error
                query = "SELECT * FROM dblink_get_result(%s) AS r(status text)"
                while conn.execute(query, [link]).fetchall():
                    pass
    finally:
        for link in links:
            conn.execute("SELECT dblink_disconnect(%s)", [link])
    for i in range(len(deferred)):  # the coordinator's view of its foreign partitions
        conn.execute(f"ANALYZE {t.docs_on(i)}")
        conn.execute(f"ANALYZE {t.terms_on(i)}")
    n_docs = conn.execute(f"SELECT n_docs FROM {t.stats}").fetchone()[0]
    tune_shards(conn, t, len(deferred), int(n_docs))


class BulkLoads:
    """:class:`~colrank.store.postgres.backend.PostgresBackend`'s bulk loading (its methods).

    Uses the backend's ``collection``, ``_pool`` (the primary's connections), ``replicas``
    and cached ``_manifest``; ``_defer_pending`` is set while a bulk load waits for the
    first batch to create the collection's tables.
    """

    collection: str
    replicas: Any
    _pool: Any
    _manifest: dict[str, Any] | None
    _defer_pending: bool

    @contextmanager
    def bulk_load(self, maintenance_work_mem: str = "1GB") -> Iterator[None]:
        """Write many batches fast: the search indexes are built once, when the block ends.

        For a first load or a large addition. Inside the block, writes skip the HNSW
        graph and the postings' indexes (searches stay correct, only slower); on the way
        out they are rebuilt on every server at once, even after an error. If the process
        dies inside the block, :meth:`finish_bulk_load` rebuilds them later
        (:mod:`colrank.store.postgres.bulk`). ``maintenance_work_mem`` is PostgreSQL's
        memory for the rebuild: enough for the HNSW graph makes it much faster.
        """
        self._defer_pending = True
        try:
            self._defer_for_bulk()
            yield
        finally:
            self._defer_pending = False
            self.finish_bulk_load(maintenance_work_mem)

    def _defer_for_bulk(self) -> None:
        if self._defer_pending:
            with self._pool.connection() as conn:
                self._defer_pending = not defer_indexes(conn, self.collection)
            self._manifest = None

    def finish_bulk_load(self, maintenance_work_mem: str = "1GB") -> bool:
        """Rebuild the indexes a bulk load dropped; False if none were (safe to repeat)."""
        with self._pool.connection() as conn:
            rebuilt = restore_indexes(conn, self.collection, maintenance_work_mem)
            self.replicas.committed(conn)
        self._manifest = None
        return rebuilt


__all__ = ["DEFERRED", "BulkLoads", "defer_indexes", "restore_indexes"]
