"""``ColrankIndex``: one object over a storage backend, a pair of encoders and the search pipeline.

A query costs one dense encoding, one ColBERT query encoding, the first-stage recall
and one MaxSim over the candidates' *stored* token embeddings; documents are never
re-encoded at query time. Writes encode first, outside any lock, then commit the
batch to the backend whole (:meth:`ColrankIndex.add`, :meth:`~ColrankIndex.upsert`,
:meth:`~ColrankIndex.delete`); each search sees one consistent state of the collection.

Example:
    >>> from colrank import ColrankConfig, ColrankIndex
    >>> index = ColrankIndex(ColrankConfig.offline())              # doctest: +SKIP
    >>> index.add(["ColBERT scores with MaxSim.", "FAISS does recall."])  # doctest: +SKIP
    >>> index.search("what is late interaction?", k=1)[0].text    # doctest: +SKIP
    'ColBERT scores with MaxSim.'
    >>> index.save("my-index"); ColrankIndex.load("my-index")      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colrank.config import ColrankConfig
from colrank.errors import InvalidInputError, UnknownIdError
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.models.identity import check_loaded_models, with_stand_in_inputs_of
from colrank.models.pair import EncoderPair
from colrank.opening import check_folder, open_database, open_local
from colrank.page_writes import PageWrites
from colrank.pipeline import SearchPipeline
from colrank.results import Document
from colrank.rewriting import recode, reencode
from colrank.searching import SearchMethods
from colrank.store.base import (
    DocumentRows,
    OnConflict,
    OnMissing,
    StorageBackend,
    WriteBatch,
    WriteResult,
)
from colrank.store.filters import Filter
from colrank.store.local.backend import LocalBackend
from colrank.validation import (
    check_choice,
    check_filter,
    check_id_list,
    check_ids,
    check_k,
    check_metadatas,
    check_texts,
)

logger = logging.getLogger(__name__)


class ColrankIndex(SearchMethods, PageWrites):
    """A searchable, persistent ColBERT-reranked collection. One object serves every face.

    Args:
        config: models, device, batching, index and storage settings
            (default: :meth:`ColrankConfig.from_env`).
        dense_encoder: an already loaded dense encoder (overrides the config's model).
        colbert_encoder: an already loaded ColBERT encoder (overrides the config's model).
        backend: where documents live (default: a new in-process :class:`LocalBackend`).
    """

    def __init__(
        self,
        config: ColrankConfig | None = None,
        *,
        dense_encoder: DenseEncoder | None = None,
        colbert_encoder: ColbertEncoder | None = None,
        backend: StorageBackend | None = None,
    ) -> None:
        self.config = with_stand_in_inputs_of(config or ColrankConfig.from_env(), colbert_encoder)
        self.encoders = EncoderPair(self.config, dense_encoder, colbert_encoder)
        self.backend = (
            backend
            if backend is not None
            else LocalBackend(
                self.config.dense_index,
                self.config.token_store.codec,
                self.config.token_store.pool_factor,
            )
        )
        self.pipeline = SearchPipeline(self.backend, self.encoders, self.config.rerank_cache_bytes)

    @property
    def dense_encoder(self) -> DenseEncoder:
        """The dense (recall) encoder, loaded on first use."""
        return self.encoders.dense

    @property
    def colbert_encoder(self) -> ColbertEncoder:
        """The ColBERT (rerank) encoder, loaded on first use."""
        return self.encoders.colbert

    # ------------------------------------------------------------------ info
    def __len__(self) -> int:
        with self.backend.read() as view:
            return view.count()

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        with self.backend.read() as view:
            return bool(view.iids_for([doc_id]))

    def stats(self) -> dict[str, Any]:
        """Sizes of the index: documents, stored tokens, bytes, codec, dimensions."""
        return self.backend.stats()

    def ids(self, filter: Filter | None = None) -> list[str]:  # noqa: A002
        """Document ids in insertion order (a replaced one moves to the end), or those matching."""
        spec = check_filter(filter)
        with self.backend.read() as view:
            return view.ids(spec)

    def get(self, ids: Sequence[str], *, missing: OnMissing = "error") -> list[Document]:
        """Stored documents by id, in the given order.

        Args:
            ids: a list of ids (a bare string is refused: wrap one id in a list).
            missing: an unknown id raises :class:`UnknownIdError` (``"error"``) or is
                left out of the result (``"ignore"``).
        """
        ids = check_id_list(ids)
        check_choice(missing, "missing", ("error", "ignore"))
        with self.backend.read() as view:
            found = view.iids_for(ids)
            unknown = [i for i in ids if i not in found]
            if unknown and missing == "error":
                raise UnknownIdError(f"ids not in the index: {unknown[:5]}")
            docs = view.documents([found[i] for i in ids if i in found])
        return [Document(d.text, d.id, d.metadata) for d in docs]

    # ---------------------------------------------------------------- writes
    def add(
        self,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        *,
        on_conflict: OnConflict = "error",
        encode_texts: Sequence[str] | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """Encode and index documents; all or nothing.

        Args:
            texts: document texts (non-empty strings), stored and returned in hits.
            metadatas: one JSON-serialisable dict per text.
            ids: unique string ids (default: random UUIDs).
            on_conflict: an id already in the index raises :class:`DuplicateIdError`
                (``"error"``) or is replaced (``"replace"``, as :meth:`upsert`).
            encode_texts: what to encode instead of ``texts`` (same length), e.g. the
                text with metadata prepended, as LlamaIndex embeds nodes.
            progress: show progress bars (default: the config's ``show_progress``).

        Returns:
            The ids of the documents written.
        """
        texts = check_texts(texts)
        metas = check_metadatas(metadatas, len(texts))
        doc_ids = (
            check_ids(ids, len(texts)) if ids is not None else [uuid.uuid4().hex for _ in texts]
        )
        to_encode = texts if encode_texts is None else check_texts(encode_texts)
        if len(to_encode) != len(texts):
            raise InvalidInputError("encode_texts must have one entry per text")
        vectors, tokens = self.encoders.encode_documents(
            to_encode, pool_factor=self.backend.info.pool_factor, progress=progress
        )
        rows = DocumentRows(doc_ids, texts, metas, vectors, tokens)
        self._write(WriteBatch(upserts=rows, on_conflict=on_conflict))
        return doc_ids

    def bulk_load(self) -> contextlib.AbstractContextManager[None]:
        """A block of many writes whose search indexes are built once, when it ends.

        On PostgreSQL the HNSW graph and BM25's indexes are rebuilt at the end of the
        block instead of updated by every write
        (:meth:`~colrank.store.postgres.backend.PostgresBackend.bulk_load`); the local
        backend needs no such block, and there it changes nothing.
        """
        load = getattr(self.backend, "bulk_load", None)
        return load() if load is not None else contextlib.nullcontext()

    def upsert(
        self,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`add`, replacing documents whose id is already in the index."""
        return self.add(texts, metadatas, ids, on_conflict="replace", **kwargs)

    def delete(self, ids: Sequence[str], *, missing: OnMissing = "error") -> list[str]:
        """Remove documents by id; returns the ids removed.

        Args:
            ids: a list of ids (a bare string is refused: wrap one id in a list).
            missing: an unknown id refuses the whole delete with
                :class:`UnknownIdError` (``"error"``), or is skipped (``"ignore"``).
        """
        return self._write(WriteBatch(deletes=check_id_list(ids), missing=missing)).deleted

    def copy_from(
        self, other: ColrankIndex, *, on_conflict: OnConflict = "replace", progress: bool = False
    ) -> int:
        """Copy every document of ``other`` in, without encoding again (same models only).

        E.g. move a saved local index into a database:
        ``ColrankIndex.open(url, "docs", local.config).copy_from(local)``.
        """
        from tqdm.auto import tqdm

        from colrank.store.transfer import copy_collection

        if not isinstance(other, ColrankIndex):
            raise InvalidInputError(
                f"copy_from takes a ColrankIndex (open it first), not {type(other).__name__}"
            )
        check_loaded_models(
            {
                "dense_model": other.encoders.names[0],
                "colbert_model": other.encoders.names[1],
                "stand_in_inputs": other.config.models.stand_in_inputs,
            },
            self.config,
            None,
            None,
        )
        with tqdm(total=len(other), desc="Copying", unit="doc", disable=not progress) as bar:
            copied = copy_collection(
                other.backend, self.backend, on_conflict=on_conflict, on_progress=bar.update
            )
        self._write_config()
        return copied

    def _write(self, batch: WriteBatch) -> WriteResult:
        dense, colbert = self.encoders.names
        result = self.backend.write(batch, dense_model=dense, colbert_model=colbert)
        if batch.upserts is not None:
            self._write_config()
        return result

    def _write_config(self) -> None:
        """A database keeps the index's settings at once (a local index does on save)."""
        self.backend.save_config(self.config.to_manifest())

    def recode_tokens(
        self, codec: str | None = None, pool_factor: int = 1, *, progress: bool | None = None
    ) -> None:
        """Rewrite the stored token embeddings with another codec and/or token pooling.

        No document is re-encoded: the stored vectors are decoded, optionally pooled
        (PyLate's hierarchical pooling, as at indexing), and encoded with the new codec.
        Lossy steps compound: start from float16/float32 storage for the best result.

        Example:
            >>> index.recode_tokens("int8", pool_factor=2)  # doctest: +SKIP
        """
        check_k(pool_factor, "pool_factor")
        self.config = recode(self.backend, self.encoders, self.config, codec, pool_factor, progress)

    def reencode_tokens(self, colbert_model: str, *, progress: bool | None = None) -> None:
        """Switch the reranker: re-encode every stored document with another ColBERT.

        The dense index, BM25 and the documents stay as they are (e.g. after
        ``colrank finetune``). Documents are encoded from their stored text, with the
        index's token codec and pooling. Searches go on meanwhile, on the old tokens.
        """
        self.config = reencode(self.backend, self.encoders, self.config, colbert_model, progress)
        self.pipeline.outside.clear()

    # ----------------------------------------------------------- persistence
    def close(self) -> None:
        """Release the backend's files, memory maps or connections; the index is unusable after."""
        self.backend.close()

    def __enter__(self) -> ColrankIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, path: str | Path) -> Path:
        """Write the index atomically to ``path`` (a directory); returns the path.

        A crash mid-save leaves the previously saved index intact; searches go on
        during a save, writes wait for it.
        """
        root = self.backend.save(check_folder(path), {"config": self.config.to_manifest()})
        logger.info("saved %d documents to %s", len(self), root)
        return root

    @classmethod
    def load(
        cls,
        path: str | Path,
        config: ColrankConfig | None = None,
        *,
        dense_encoder: DenseEncoder | None = None,
        colbert_encoder: ColbertEncoder | None = None,
        verify: bool = True,
        mmap: bool = True,
        trust_models: bool = False,
    ) -> ColrankIndex:
        """Open a saved index.

        The stored data decides the index type, token codec and pooling. The models
        must be the ones the index was built with: a ``config`` or encoder naming
        another model raises :class:`~colrank.errors.ModelMismatchError` (switch the
        reranker with :meth:`reencode_tokens` instead).

        Args:
            path: the index directory.
            config: settings to use (default: the saved ones, with this machine's
                ``COLRANK_DEVICE`` / ``COLRANK_DTYPE`` runtime overrides).
            dense_encoder: an already loaded dense encoder (its dimension must match).
            colbert_encoder: an already loaded ColBERT encoder (its dimension must match).
            verify: check every file's SHA-256 (sizes are always checked).
            mmap: keep token embeddings on disk, memory-mapped.
            trust_models: with no ``config``, load the local model folders the index
                names (refused by default: a model folder can ship code; hub ids and
                ``offline:minilm`` need no trust).
        """
        backend, config = open_local(
            path,
            config,
            dense_encoder,
            colbert_encoder,
            verify=verify,
            mmap=mmap,
            trust_models=trust_models,
        )
        return cls(
            config, dense_encoder=dense_encoder, colbert_encoder=colbert_encoder, backend=backend
        )

    @classmethod
    def open(
        cls,
        url: str,
        collection: str = "default",
        config: ColrankConfig | None = None,
        *,
        dense_encoder: DenseEncoder | None = None,
        colbert_encoder: ColbertEncoder | None = None,
        trust_models: bool = False,
        **backend_options: Any,
    ) -> ColrankIndex:
        """Open a collection in PostgreSQL + pgvector (created on its first write).

        The database is the persistence: every write is a committed transaction that
        other processes see; there is nothing to ``save``. ``backend_options`` go to
        :class:`~colrank.store.postgres.backend.PostgresBackend` (``exact``,
        ``ef_search``, ``dense_type``, ``pool_size``). ``trust_models`` is as in
        :meth:`load`.

        Example:
            >>> index = ColrankIndex.open("postgresql://localhost/rag", "docs")  # doctest: +SKIP
        """
        backend, config = open_database(
            url, collection, config, dense_encoder, colbert_encoder, trust_models, **backend_options
        )
        return cls(
            config, dense_encoder=dense_encoder, colbert_encoder=colbert_encoder, backend=backend
        )


__all__ = ["ColrankIndex"]
