"""The embedded local backend: FAISS + memory-mapped token codes + SQLite + BM25.

Four in-process stores keyed by one internal integer id, which this backend allocates
(ids only grow; a replaced document gets a new one). Searches read under a shared
lock, so a search sees one state from recall to the last document lookup; a write
prepares its batch (validation, BM25 tokenising) beside running searches and holds
the lock exclusively only to apply it, undoing what it applied if a store fails.
Persistence is explicit: :meth:`LocalBackend.save` writes an atomic snapshot
(:mod:`colrank.store.local.snapshots`), :meth:`LocalBackend.load` opens one.

Example:
    >>> import numpy as np
    >>> from colrank.store.base import DocumentRows, WriteBatch
    >>> backend = LocalBackend()
    >>> rows = DocumentRows(["a", "b"], ["x", "y"], [{}, {}], np.eye(2, dtype="float32"),
    ...                     [np.ones((2, 2)), np.ones((1, 2))])
    >>> _ = backend.write(WriteBatch(upserts=rows))
    >>> backend.write(WriteBatch(deletes=["a"])).deleted, backend.stats()["documents"]
    (['a'], 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from colrank import __version__
from colrank.errors import (
    CorruptIndexError,
    DimensionMismatchError,
    InvalidInputError,
    UnknownIdError,
)
from colrank.index_settings import DEFAULT_STORAGE_CODEC, DenseIndexConfig, MuveraConfig
from colrank.store.base import (
    DocumentRows,
    StoreInfo,
    TokenProducer,
    WriteBatch,
    WriteResult,
)
from colrank.store.local.dense_index import DenseIndex
from colrank.store.local.docstore import DocStore
from colrank.store.local.fde_index import FdeIndex, FdeSlot
from colrank.store.local.lexical_index import BM25Index
from colrank.store.local.snapshots import (
    commit_manifest,
    current_snapshot,
    read_manifest,
    verify_files,
    write_snapshot,
)
from colrank.store.local.token_store import TokenStore
from colrank.store.local.view import LocalReadView
from colrank.store.locking import ReadWriteLock

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class LocalBackend:
    """FAISS, a token file, SQLite and BM25 in this process (the default backend).

    Args:
        dense_index: FAISS index type and parameters.
        codec: token codec (``bfloat16``, ``float16``, ``float32``, ``int8``, ``pq<m>``,
            ``opq<m>``).
        pool_factor: the token pooling the stored documents were encoded with (recorded).
    """

    def __init__(
        self,
        dense_index: DenseIndexConfig | None = None,
        codec: str = DEFAULT_STORAGE_CODEC,
        pool_factor: int = 1,
    ) -> None:
        self._dense_config = dense_index or DenseIndexConfig()
        self._codec = codec
        self._pool_factor = pool_factor
        self._dense: DenseIndex | None = None
        self._tokens: TokenStore | None = None
        self._docs = DocStore()
        self._bm25 = BM25Index()
        self._fde = FdeSlot()
        self._next_iid = 0
        self._models: tuple[str | None, str | None] = (None, None)
        self._lock = ReadWriteLock()

    # ------------------------------------------------------------------ info
    @property
    def info(self) -> StoreInfo:
        """What the stored data was made with."""
        tokens = self._tokens
        return StoreInfo(
            dense_model=self._models[0],
            colbert_model=self._models[1],
            dense_dim=None if self._dense is None else self._dense.dim,
            codec=self._codec if tokens is None else tokens.codec.name,
            pool_factor=self._pool_factor,
        )

    def stats(self) -> dict[str, Any]:
        """Sizes: documents, stored tokens, bytes, codec, dimensions."""
        with self._lock.reading():
            if self._dense is None or self._tokens is None:
                return {"documents": 0}
            tokens = self._tokens
            return {
                "documents": len(self._docs),
                "tokens": tokens.n_tokens,
                "token_bytes": tokens.nbytes,
                "bytes_per_token": tokens.codec.width,
                "codec": tokens.codec.name,
                "pool_factor": self._pool_factor,
                "colbert_dim": tokens.dim,
                "dense_dim": self._dense.dim,
                "dense_index": self._dense.kind,
            }

    # ----------------------------------------------------------------- reads
    @contextmanager
    def read(self) -> Iterator[LocalReadView]:
        """A consistent view: no write is applied until the block ends."""
        with self._lock.reading():
            yield LocalReadView(self)

    # ---------------------------------------------------------------- writes
    def write(
        self,
        batch: WriteBatch,
        *,
        dense_model: str | None = None,
        colbert_model: str | None = None,
    ) -> WriteResult:
        """Apply upserts and deletes whole, or raise and change nothing."""
        rows = batch.upserts
        with self._lock.writer():
            found = self._docs.iids_for([*(rows.ids if rows else []), *batch.deletes])
            replaced, deleted = batch.settle(found)
            if rows is not None and len(rows):
                self._check_rows(rows)
            remove = sorted({found[i] for i in (*replaced, *deleted)})
            bm25_tokens = self._bm25.tokenize(rows.texts) if rows else []
            with self._lock.exclusive():
                self._apply(rows, remove, bm25_tokens)
                if rows is not None and len(rows):
                    self._models = (
                        dense_model or self._models[0],
                        colbert_model or self._models[1],
                    )
        added = [i for i in (rows.ids if rows else []) if i not in found]
        return WriteResult(added=added, replaced=replaced, deleted=deleted)

    def _check_rows(self, rows: DocumentRows) -> None:
        dense_dim = rows.vectors.shape[1] if rows.vectors.ndim == 2 else -1
        token_dims = {t.shape[1] if t.ndim == 2 else -1 for t in rows.tokens}
        if self._dense is not None and dense_dim != self._dense.dim:
            raise DimensionMismatchError(
                f"dense vectors of dimension {dense_dim} do not fit this index "
                f"(dimension {self._dense.dim}); was it built with another dense model?"
            )
        if self._tokens is not None and token_dims != {self._tokens.dim}:
            raise DimensionMismatchError(
                f"token embeddings of dimension {sorted(token_dims)} do not fit this index "
                f"(dimension {self._tokens.dim}); was it built with another ColBERT model?"
            )

    def _apply(
        self, rows: DocumentRows | None, remove: list[int], bm25_tokens: list[list[str]]
    ) -> None:
        """Apply under the exclusive lock; undo every applied step if one fails."""
        created = self._dense is None
        undo: list[Callable[[], None]] = []
        try:
            if rows is not None and len(rows):
                iids = np.arange(self._next_iid, self._next_iid + len(rows), dtype=np.int64)
                self._next_iid += len(rows)  # never reused, even after a failed write
                if created:
                    self._dense = DenseIndex(rows.vectors.shape[1], self._dense_config)
                    self._tokens = TokenStore(rows.tokens[0].shape[1], self._codec)
                dense, tokens = self._stores()
                dense.add(iids, rows.vectors)
                undo.append(lambda: dense.remove(iids))
                tokens.add(iids.tolist(), rows.tokens)
                undo.append(lambda: tokens.delete(iids.tolist()))
                undo.append(self._fde.added(iids, tokens.get))
                self._bm25.add_tokens(iids, bm25_tokens)
                undo.append(lambda: self._bm25.delete(iids))
                self._docs.add(iids, rows.ids, rows.texts, rows.metadatas, replacing=remove)
            elif remove:
                self._docs.delete(remove)
        except BaseException:
            for step in reversed(undo):
                step()
            if created:
                self._dense = self._tokens = None
            raise
        if remove:  # in-memory marks; the documents are already gone from the docstore
            dense, tokens = self._stores()
            dense.remove(np.asarray(remove, dtype=np.int64))
            tokens.delete(remove)
            self._bm25.delete(remove)
            self._fde.removed(np.asarray(remove, dtype=np.int64))

    def rewrite_tokens(
        self,
        produce: TokenProducer,
        *,
        codec: str,
        pool_factor: int,
        colbert_model: str,
        step: int = 2048,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Rebuild every document's stored tokens with ``produce(docs, old_tokens)``.

        Runs beside searches (which see the old tokens) and swaps the new store in
        exclusively at the end; other writes wait.
        """
        with self._lock.writer():
            _, old = self._stores()
            iids = old.ids.tolist()
            new: TokenStore | None = None
            for start in range(0, len(iids), step):
                part = iids[start : start + step]
                made = produce(self._docs.get(part), old.get(part))
                if new is None:
                    new = TokenStore(made[0].shape[1], codec)
                new.add(part, made)
                if on_progress is not None:
                    on_progress(len(part))
            with self._lock.exclusive():
                if new is not None:
                    self._tokens = new
                    self._fde.drop()  # encodings of the old tokens
                self._codec, self._pool_factor = codec, pool_factor
                self._models = (self._models[0], colbert_model)

    def close(self) -> None:
        """Drop the stores (memory maps are released when no view holds them)."""
        with self._lock.writer(), self._lock.exclusive():
            self._dense = self._tokens = None
            self._docs = DocStore()
            self._bm25 = BM25Index()
            self._fde = FdeSlot()

    # the read view's access to the stores (same package)
    @property
    def docs(self) -> DocStore:
        """The document store (texts, metadata, filters)."""
        return self._docs

    @property
    def bm25(self) -> BM25Index:
        """The lexical index."""
        return self._bm25

    @property
    def dense(self) -> DenseIndex | None:
        """The FAISS index (None before the first document)."""
        return self._dense

    def fde_index(self, config: MuveraConfig) -> FdeIndex:
        """The MUVERA encodings for ``config``, built from the stored tokens on first use."""
        _, tokens = self._stores()
        return self._fde.get(config, tokens.dim, tokens.ids, tokens.get)

    def stores(self) -> tuple[DenseIndex, TokenStore]:
        """FAISS and the token store; :class:`UnknownIdError` when nothing is stored yet."""
        return self._stores()

    def _stores(self) -> tuple[DenseIndex, TokenStore]:
        if self._dense is None or self._tokens is None:
            raise UnknownIdError("the index holds no documents")
        return self._dense, self._tokens

    # ----------------------------------------------------------- persistence
    def save_config(self, config: dict[str, Any]) -> None:
        """Nothing now: a local collection keeps the index's settings at :meth:`save`."""

    def save(self, root: Path, extra: dict[str, Any]) -> Path:
        """Write an atomic snapshot under ``root`` (readers go on; writes wait).

        ``extra`` goes into the manifest beside the backend's own entries.
        """
        with self._lock.writer():
            if self._dense is None or len(self._docs) == 0:
                raise InvalidInputError("the index is empty: add documents before saving")
            dense, tokens = self._stores()
            store: dict[str, Any] = {
                "dense_index": self._dense_config.model_dump(mode="json"),
                "codec": tokens.codec.name,
                "pool_factor": self._pool_factor,
            }
            manifest = {
                "format": "colrank-index",
                "format_version": FORMAT_VERSION,
                "colrank_version": __version__,
                "saved_at": datetime.now(timezone.utc).isoformat(),
                **extra,
                "store": store,
                "dense_model": self._models[0],
                "colbert_model": self._models[1],
                "dense_dim": dense.dim,
                "colbert_dim": tokens.dim,
                "documents": len(self._docs),
                "next_internal_id": self._next_iid,
            }
            with write_snapshot(root) as snapshot:
                files = dense.save(snapshot)
                files += tokens.save(snapshot)
                files += self._docs.save(snapshot)
                files += self._bm25.save(snapshot)
                files += self._fde.save(snapshot, store)
                commit_manifest(snapshot, manifest, files)
        return root

    @classmethod
    def load(
        cls, root: Path, *, verify: bool = True, mmap: bool = True
    ) -> tuple[LocalBackend, dict[str, Any]]:
        """Open the live snapshot under ``root``; returns the backend and its manifest.

        The index type, codec and pooling are the saved ones. When other processes
        publish two saves while this one reads, the snapshot it started on can be
        removed under it; it then opens the new live one (a few times at most).
        """
        for attempt in range(5):
            snapshot = current_snapshot(root)
            try:
                return cls._load_snapshot(root, snapshot, verify=verify, mmap=mmap)
            except (CorruptIndexError, OSError):
                if attempt == 4 or current_snapshot(root) == snapshot:
                    raise  # really damaged, not replaced while being read
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_snapshot(
        cls, root: Path, snapshot: Path, *, verify: bool, mmap: bool
    ) -> tuple[LocalBackend, dict[str, Any]]:
        manifest = read_manifest(snapshot)
        if manifest.get("format") != "colrank-index":
            raise CorruptIndexError(f"{snapshot} does not hold a colrank index")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise CorruptIndexError(
                f"index format {manifest.get('format_version')} is not supported by this "
                f"colrank (format {FORMAT_VERSION}); rebuild the index"
            )
        verify_files(snapshot, manifest, checksums=verify)
        # "store" since 0.2; indexes saved before keep these settings in their "config"
        store = manifest.get("store") or {}
        legacy = manifest.get("config") or {}
        dense_config = DenseIndexConfig.model_validate(
            store.get("dense_index") or legacy.get("dense_index") or {}
        )
        pool_factor = int(
            store.get("pool_factor", (legacy.get("token_store") or {}).get("pool_factor", 1))
        )
        dense = DenseIndex.load(snapshot, dense_config)
        tokens = TokenStore.load(snapshot, mmap=mmap)
        backend = cls(dense_config, tokens.codec.name, pool_factor)
        backend._dense, backend._tokens = dense, tokens
        backend._docs = DocStore.load(snapshot)
        bm25 = BM25Index.load(snapshot)
        if bm25 is None:  # an index saved before BM25 was always saved, or an older format
            logger.info("rebuilding BM25 for %s (saved without a current BM25)", root)
            bm25 = BM25Index()
            bm25.add(*backend._docs.all_texts())
        backend._bm25 = bm25
        backend._fde.load(snapshot, store, tokens.dim, int(manifest["documents"]))
        backend._next_iid = int(manifest["next_internal_id"])
        backend._models = (manifest.get("dense_model"), manifest.get("colbert_model"))
        backend._check_consistency(manifest)
        return backend, manifest

    def _check_consistency(self, manifest: dict[str, Any]) -> None:
        dense, tokens = self._stores()
        counts = {
            "manifest": int(manifest["documents"]),
            "documents": len(self._docs),
            "dense": len(dense),
            "tokens": len(tokens),
            "bm25": len(self._bm25),
        }
        if len(set(counts.values())) != 1:
            raise CorruptIndexError(f"index parts disagree on the document count: {counts}")
        if dense.dim != int(manifest["dense_dim"]) or tokens.dim != int(manifest["colbert_dim"]):
            raise CorruptIndexError("index parts disagree with the manifest on dimensions")


__all__ = ["FORMAT_VERSION", "LocalBackend"]
