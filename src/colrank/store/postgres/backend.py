"""``PostgresBackend``: a collection in PostgreSQL + pgvector, shared by many processes.

One row per document (internal id, user id, text, ``jsonb`` metadata, dense vector with
an HNSW index, token count, token codes as ``bytea``, BM25 length) plus a postings table
for BM25 and one manifest row per collection. Writes are transactions: a batch of
upserts and deletes commits whole or not at all, and other processes see it when it
commits. A read view is one ``REPEATABLE READ`` read-only transaction, so a search sees
one snapshot from recall to the last document lookup. MaxSim stays in colrank (in SQL it
is ~10x slower); the database fetches the candidates' token codes by primary key.

BM25 scores with the local backend's tokenizer and formula (Lucene IDF, k1 = 1.5,
b = 0.75) from the postings, read best-first (:mod:`colrank.store.postgres.lexical`).

Past one machine: a multi-host URL sends searches to hot standbys and writes to the
primary (:mod:`colrank.store.postgres.replicas`); ``shards=[...]`` at creation spreads
the documents over several servers (:mod:`colrank.store.postgres.layout`). A server
that is down gives :class:`~colrank.errors.StoreUnavailableError` within
``connect_timeout`` seconds, and the next call after it is back succeeds.

Example:
    >>> backend = PostgresBackend("postgresql://localhost/colrank", "docs")  # doctest: +SKIP
    >>> with backend.read() as view:                                        # doctest: +SKIP
    ...     view.count()
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from colrank.errors import (
    DuplicateIdError,
    InvalidInputError,
)
from colrank.store.base import (
    StoreInfo,
    TokenProducer,
    WriteBatch,
    WriteResult,
)
from colrank.store.codecs import Codec, make_codec
from colrank.store.local.lexical_index import BM25Index
from colrank.store.postgres import bulk, layout, recoding, schema
from colrank.store.postgres.replicas import Replicas
from colrank.store.postgres.view import PostgresReadView

FORMAT_VERSION = 2  # 2: postings with impacts, document frequencies, shards
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class PostgresBackend(bulk.BulkLoads):
    """A colrank collection in PostgreSQL (pgvector >= 0.8).

    Args:
        url: a libpq URL, e.g. ``postgresql://user@host:5432/db``.
        collection: the collection name (lowercase letters, digits, ``_``).
        codec: token codec for a new collection: ``int8`` (the default here: half of
            float16's bytes on the wire and on disk, the same SciFact nDCG@10, 99% of the
            MaxSim top-10 kept; docs/benchmarks.md), ``float16``, ``float32``, ``pq<M>``.
        dense_type: ``halfvec`` (half the bytes) or ``vector`` (float32) for a new collection.
        exact: search the dense vectors exhaustively instead of through HNSW (one server).
        ef_search: HNSW candidate list size (pgvector's ``hnsw.ef_search``); by default
            it grows with the collection, from 200 to 1000 at 1M documents.
        bm25_depth: postings read per query term for BM25's top-k (exact scores for
            those candidates; exhaustive when larger than every term's frequency).
        pool_size: connections kept open (per role: primary, standbys).
        connect_timeout: seconds a connection attempt may take before
            :class:`~colrank.errors.StoreUnavailableError` (libpq counts whole seconds,
            at least 2).
        shards: for a new collection, the servers to spread its documents over (libpq
            URLs; the coordinator at ``url`` keeps the statistics and the manifest).
        read_your_writes: with standbys, searches see this process's own writes.
        replica_wait: seconds a search waits for a standby to replay them before it
            reads from the primary.
    """

    def __init__(
        self,
        url: str,
        collection: str = "default",
        *,
        codec: str = "int8",
        dense_type: str = "halfvec",
        pool_factor: int = 1,
        exact: bool = False,
        ef_search: int | None = None,
        bm25_depth: int = 5000,
        pool_size: int = 4,
        connect_timeout: float = 3.0,
        shards: list[str] | None = None,
        read_your_writes: bool = True,
        replica_wait: float = 2.0,
    ) -> None:
        if not _NAME.fullmatch(collection):
            raise InvalidInputError(
                f"collection names are 1-40 lowercase letters, digits or _, not {collection!r}"
            )
        schema.check_codec_name(codec)
        if dense_type not in ("halfvec", "vector"):
            raise InvalidInputError("dense_type is 'halfvec' or 'vector'")
        if bm25_depth < 1:
            raise InvalidInputError(f"bm25_depth must be at least 1, not {bm25_depth}")
        self.collection = collection
        self.tables = schema.Tables(collection)
        self.exact = exact
        self.ef_search = ef_search
        self.bm25_depth = bm25_depth
        self._wanted = {"codec": codec, "dense_type": dense_type, "pool_factor": pool_factor}
        shard_list = layout.shard_entries(collection, list(shards)) if shards else []
        self._settings = {**self._wanted, "format_version": FORMAT_VERSION, "shards": shard_list}
        self.replicas = Replicas(
            url,
            size=pool_size,
            connect_timeout=connect_timeout,
            configure=schema.configure,
            read_your_writes=read_your_writes,
            replica_wait=replica_wait,
        )
        self._pool = self.replicas.writes
        self._bm25 = BM25Index()  # its tokenizer only: the statistics live in the database
        self._manifest: dict[str, Any] | None = None
        self._codec: tuple[tuple[Any, ...], Codec] | None = None
        self._saved_config: dict[str, Any] | None = None
        self._shard_count = 0
        self._defer_pending = False  # in bulk_load, until the first batch made the tables
        try:  # fail here, clearly, rather than at the first search
            self._manifest = self._upgraded()
        except BaseException:
            self.replicas.close()
            raise
        if self._manifest and self._manifest.get("shards") and exact:
            self.replicas.close()
            raise InvalidInputError(
                "exact=True searches one server; a spread collection runs HNSW on each shard "
                "(raise ef_search instead)"
            )

    def _upgraded(self) -> dict[str, Any] | None:
        """The manifest, after bringing an older collection's tables up to this format."""
        with self.replicas.reads.connection() as conn:
            manifest = schema.read_manifest(conn, self.collection)
            conn.commit()
        if manifest is None or int(manifest.get("format_version", 1)) >= FORMAT_VERSION:
            return manifest
        with self._pool.connection() as conn, conn.transaction():
            return layout.upgrade(conn, self.collection, manifest)

    def codec(self, conn: Any, manifest: dict[str, Any]) -> Codec:
        """The collection's token codec (trained parameters read once, then cached)."""
        key = (manifest["codec"], int(manifest["colbert_dim"]), manifest.get("codec_version", 0))
        if self._codec is None or self._codec[0] != key:
            codec = make_codec(manifest["codec"], int(manifest["colbert_dim"]))
            if not codec.trained:
                codec.load_params_bytes(schema.read_codec_params(conn, self.tables))
            self._codec = (key, codec)
        return self._codec[1]

    # ------------------------------------------------------------------ info
    def manifest(self, *, refresh: bool = False) -> dict[str, Any] | None:
        """The collection's manifest row (None before the first write)."""
        if self._manifest is None or refresh:
            with self.replicas.read_connection() as conn:
                self._manifest = schema.read_manifest(conn, self.collection)
                conn.commit()
        return self._manifest

    @property
    def info(self) -> StoreInfo:
        """What the stored data was made with."""
        m = self.manifest(refresh=True) or {}
        return StoreInfo(
            dense_model=m.get("dense_model"),
            colbert_model=m.get("colbert_model"),
            dense_dim=m.get("dense_dim"),
            codec=m.get("codec", self._wanted["codec"]),
            pool_factor=int(m.get("pool_factor", self._wanted["pool_factor"])),
        )

    def stats(self) -> dict[str, Any]:
        """Sizes: documents, tokens, bytes, codec, dimensions."""
        m = self.manifest(refresh=True)
        if m is None:
            return {"documents": 0}
        with self.replicas.read_connection() as conn:
            sizes = schema.collection_sizes(conn, self.tables)
            conn.commit()
        return {
            **sizes,
            "bytes_per_token": make_codec(m["codec"], int(m["colbert_dim"])).width,
            **{k: m[k] for k in ("codec", "colbert_dim", "dense_dim")},
            "pool_factor": int(m["pool_factor"]),
            "dense_index": "exact" if self.exact else f"hnsw ({m['dense_type']})",
            "indexes_deferred": bool(m.get(bulk.DEFERRED)),
        }

    # ----------------------------------------------------------------- reads
    @contextmanager
    def read(self) -> Iterator[PostgresReadView]:
        """One snapshot of the collection (a read-only REPEATABLE READ transaction)."""
        from psycopg import IsolationLevel

        with self.replicas.read_connection() as conn:
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                with conn.transaction():
                    # the manifest as of this snapshot: another process may have created the
                    # collection or re-coded its tokens since this one last looked
                    manifest = schema.read_manifest(conn, self.collection)
                    yield PostgresReadView(self, conn, manifest)
            finally:
                conn.read_only = None  # the server's default: a standby refuses READ WRITE
                conn.isolation_level = None

    # ---------------------------------------------------------------- writes
    def write(
        self,
        batch: WriteBatch,
        *,
        dense_model: str | None = None,
        colbert_model: str | None = None,
    ) -> WriteResult:
        """Apply a batch in one transaction: all of it, or none."""
        import psycopg

        rows = batch.upserts
        prepared = schema.prepare_rows(rows, self._bm25) if rows is not None and len(rows) else None
        # no retry: the write lock (``_lock_writes``) makes each writer's id checks see
        # every earlier commit, so racing writers no longer collide on the unique id
        try:
            with self._pool.connection() as conn:
                with conn.transaction():
                    result = self._apply(conn, batch, prepared, dense_model, colbert_model)
                self.replicas.committed(conn)
                if prepared is not None:  # after the commit, outside the transaction
                    schema.analyze_if_grown(conn, self.tables, self._shard_count)
                    conn.commit()
            self._defer_for_bulk()
            return result
        except psycopg.errors.UniqueViolation as exc:  # pragma: no cover - the lock prevents it
            raise DuplicateIdError(f"an id of this batch was just added: {exc}") from exc

    def _lock_writes(self, conn: Any) -> None:
        """Hold the collection's write lock until this transaction ends.

        One writer at a time, from its first check to its commit: the checks then see
        every earlier write, so processes upserting the same ids never collide on the
        unique id. (Writers queued on the statistics row before anyway, only later.)
        """
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank-write:{self.collection}"]
        )

    def _apply(
        self,
        conn: Any,
        batch: WriteBatch,
        prepared: dict[str, Any] | None,
        dense_model: str | None,
        colbert_model: str | None,
    ) -> WriteResult:
        rows = batch.upserts
        upsert_ids = rows.ids if rows is not None else []
        self._lock_writes(conn)
        manifest = schema.read_manifest(conn, self.collection)  # this transaction's view
        if prepared is not None:
            if manifest is None:  # the first write creates the collection (or finds it made)
                made = {"dense_model": dense_model, "colbert_model": colbert_model}
                layout.create_for(conn, self.collection, rows, prepared, made, self._settings)
                manifest = schema.read_manifest(conn, self.collection)
            assert manifest is not None
            self._shard_count = len(manifest.get("shards") or [])
            schema.check_dims(manifest, rows.vectors.shape[1], prepared["colbert_dim"])
            codec = self.codec(conn, manifest)
            prepared["codes"] = [
                codec.encode(np.asarray(t, dtype=np.float32)).tobytes() for t in rows.tokens
            ]
            prepared["dense_type"] = manifest["dense_type"]
            prepared["reference"] = float(manifest["bm25_reference_length"])
        elif manifest is None:  # nothing stored yet: only deletes
            batch.settle(())
            return WriteResult(deleted=[])
        t = self.tables
        found = dict(
            conn.execute(
                f"SELECT id, iid FROM {t.docs} WHERE id = ANY(%s)",
                [[*upsert_ids, *batch.deletes]],
            ).fetchall()
        )
        replaced, deleted = batch.settle(found)
        remove = sorted({found[i] for i in (*replaced, *deleted)})
        schema.delete_rows(conn, t, remove)
        if rows is not None and prepared is not None and len(rows):
            schema.insert_rows(conn, t, rows, prepared)
        if rows is not None and len(rows) and (dense_model or colbert_model):
            schema.update_manifest(
                conn,
                self.collection,
                {
                    k: v
                    for k, v in (("dense_model", dense_model), ("colbert_model", colbert_model))
                    if v
                },
            )
        self._manifest = None
        added = [i for i in upsert_ids if i not in found]
        return WriteResult(added=added, replaced=replaced, deleted=deleted)

    def save(self, root: Path, extra: dict[str, Any]) -> Path:
        """Refused: the database is the persistence, every write is already committed."""
        raise InvalidInputError(
            "this index lives in a database, which is its persistence: every write is "
            "already committed; there is nothing to save"
        )

    def save_config(self, config: dict[str, Any]) -> None:
        """Keep the index's settings in the manifest (what ``ColrankIndex.open`` reads back).

        Written when they change, not on every write (the manifest row is shared by all
        writers of the collection).
        """
        if config == self._saved_config:
            return
        with self._pool.connection() as conn:
            with conn.transaction():
                if schema.read_manifest(conn, self.collection) is None:
                    return
                schema.update_manifest(conn, self.collection, {"config": config})
            self.replicas.committed(conn)
        self._saved_config = config
        self._manifest = None

    def rewrite_tokens(
        self,
        produce: TokenProducer,
        *,
        codec: str,
        pool_factor: int,
        colbert_model: str,
        step: int = 512,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Re-make every document's tokens in one transaction (searches see the old ones)."""
        schema.check_codec_name(codec)
        with self.read() as view:
            iids = sorted(view.iids_for(view.ids()).values())
            old_codec = view.codec
        settings = {"codec": codec, "pool_factor": pool_factor, "colbert_model": colbert_model}
        with self._pool.connection() as conn:
            with conn.transaction():
                self._lock_writes(conn)
                recoding.rewrite(
                    conn, self.collection, iids, old_codec, produce, settings,
                    step=step, on_progress=on_progress,
                )  # fmt: skip
            self.replicas.committed(conn)
        self._manifest = None

    def drop(self) -> None:
        """Delete the collection: its tables and its manifest row."""
        with self._pool.connection() as conn, conn.transaction():
            layout.drop(conn, self.collection, schema.read_manifest(conn, self.collection))
        self._manifest = self._saved_config = None

    def close(self) -> None:
        """Close the connections."""
        self.replicas.close()


__all__ = ["PostgresBackend"]
