"""The storage backend protocol: everything colrank keeps per document, behind one seam.

A backend stores, for each document, its user id, text, metadata, dense vector and
token codes, and answers the questions a search asks of them: dense recall with a
filter, lexical recall, token codes and vectors by id, documents by id. It allocates
the internal integer ids itself and records what the stored data was made with
(:class:`StoreInfo`).

Reads go through a :class:`ReadView`, one consistent state of the collection for the
whole of a search (``with backend.read() as view:``). Writes go through
:meth:`StorageBackend.write`, which applies a :class:`WriteBatch` of upserts and
deletes as one unit: every store or none. Filters are passed down *as filters* (the
Mongo-style dicts of :mod:`colrank.store.filters`), so a database backend can put them
in its own query.

:class:`~colrank.store.local.backend.LocalBackend` (FAISS + memory-mapped tokens +
SQLite + BM25) is the embedded default; every backend passes the contract tests in
``tests/test_backend_contract.py``.

Example:
    >>> import numpy as np
    >>> from colrank.store.local.backend import LocalBackend
    >>> backend = LocalBackend()
    >>> rows = DocumentRows(["a"], ["hello"], [{}], np.ones((1, 2), "float32"), [np.ones((3, 2))])
    >>> backend.write(WriteBatch(upserts=rows)).added
    ['a']
    >>> with backend.read() as view:
    ...     view.documents(list(view.iids_for(["a"]).values()))[0].text
    'hello'
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from colrank.errors import DuplicateIdError, InvalidInputError, UnknownIdError
from colrank.store.filters import Filter
from colrank.validation import check_choice

OnConflict = Literal["error", "replace"]
OnMissing = Literal["error", "ignore"]
TokenProducer = Callable[[list["StoredDoc"], list[np.ndarray]], list[np.ndarray]]
"""``(documents, their stored tokens) -> new tokens``: how :meth:`StorageBackend.rewrite_tokens`
re-makes a batch (decode + pool + re-encode, or encode the texts with another ColBERT)."""


@dataclass(frozen=True)
class StoredDoc:
    """A stored document: internal id, user id, text, metadata."""

    iid: int
    id: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class DocumentRows:
    """Encoded documents ready to store, one entry per document in every field.

    ``vectors`` are the unit-norm dense vectors ``(n, dense_dim)``; ``tokens`` the
    per-document ColBERT token embeddings ``(n_tokens_i, colbert_dim)``.
    """

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray
    tokens: list[np.ndarray]

    def __post_init__(self) -> None:
        n = len(self.ids)
        sizes = {len(self.texts), len(self.metadatas), len(self.vectors), len(self.tokens)}
        if sizes != {n}:
            raise InvalidInputError("document rows differ in length")
        if len(set(self.ids)) != n:
            raise InvalidInputError("a write batch names the same id twice")

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class WriteBatch:
    """Upserts and deletes applied together: all of them, or none.

    Args:
        upserts: documents to add (or replace, with ``on_conflict="replace"``).
        deletes: ids to remove.
        on_conflict: an upserted id that is already stored: ``"error"`` refuses the
            batch (:class:`~colrank.errors.DuplicateIdError`), ``"replace"`` replaces it.
        missing: a deleted id that is not stored: ``"error"`` refuses the batch
            (:class:`~colrank.errors.UnknownIdError`), ``"ignore"`` skips it.
    """

    upserts: DocumentRows | None = None
    deletes: Sequence[str] = ()
    on_conflict: OnConflict = "error"
    missing: OnMissing = "error"

    def settle(self, stored: Collection[str]) -> tuple[list[str], list[str]]:
        """Apply the conflict and missing-id policy, given which of the batch's ids are stored.

        Every backend calls this before it changes anything, so the errors and their
        messages are the same everywhere. Returns ``(replaced, deleted)``: the upserted
        ids that replace a stored document, and the deleted ids that are stored (once
        each, in order). Raises :class:`~colrank.errors.DuplicateIdError` or
        :class:`~colrank.errors.UnknownIdError` as ``on_conflict`` / ``missing`` say.
        """
        upserted = self.upserts.ids if self.upserts is not None else []
        replaced = [i for i in upserted if i in stored]
        if replaced and self.on_conflict == "error":
            raise DuplicateIdError(
                f"ids already in the index: {sorted(replaced)[:5]}; "
                "use upsert (or on_conflict='replace') to replace them"
            )
        unknown = [i for i in self.deletes if i not in stored]
        if unknown and self.missing == "error":
            raise UnknownIdError(f"ids not in the index: {unknown[:5]}")
        return replaced, [i for i in dict.fromkeys(self.deletes) if i in stored]

    def __post_init__(self) -> None:
        if isinstance(self.deletes, str):
            raise InvalidInputError("deletes must be a list of ids (wrap a single id in a list)")
        check_choice(self.on_conflict, "on_conflict", ("error", "replace"))
        check_choice(self.missing, "missing", ("error", "ignore"))


@dataclass(frozen=True)
class WriteResult:
    """What a write did: ids added new, replaced in place, and deleted."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LexicalResult:
    """One query's lexical (BM25) recall.

    ``scores`` / ``iids``: the top documents, best first (documents without a query
    term are left out). ``query_max``: the largest score any document could get (the
    sum of the query terms' IDFs). ``also``: the scores of the ids asked for in
    ``also`` (NaN where not indexed or filtered out).
    """

    scores: np.ndarray
    iids: np.ndarray
    query_max: float
    also: np.ndarray


@dataclass(frozen=True)
class StoreInfo:
    """What the stored data was made with (a backend's manifest).

    ``None`` for a model or a dimension means nothing has been stored yet.
    """

    dense_model: str | None
    colbert_model: str | None
    dense_dim: int | None
    codec: str
    pool_factor: int


@runtime_checkable
class ReadView(Protocol):
    """One consistent state of a collection, valid inside ``with backend.read()``."""

    def count(self) -> int:
        """Live documents."""
        ...

    def ids(self, filter: Filter | None = None) -> list[str]:  # noqa: A002
        """User ids in insertion order; only those whose metadata match ``filter`` if given."""
        ...

    def iids_for(self, ids: Sequence[str]) -> dict[str, int]:
        """User id -> internal id for the ids that are stored (others left out)."""
        ...

    def documents(self, iids: Sequence[int]) -> list[StoredDoc]:
        """Stored documents for internal ids, in that order."""
        ...

    def dense_search(
        self,
        vectors: np.ndarray,
        n: int,
        filter: Filter | None,  # noqa: A002
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` inner products per query among documents matching ``filter``.

        Returns ``(scores, iids)``, each ``(n_queries, n')``; -1 ids pad missing slots.
        A filtered search still fills ``n`` when ``n`` documents match.
        """
        ...

    def dense_vectors(self, iids: Sequence[int]) -> np.ndarray:
        """Stored dense vectors ``(len(iids), dense_dim)`` float32."""
        ...

    def lexical_search(
        self,
        query: str,
        n: int,
        filter: Filter | None,  # noqa: A002
        also: np.ndarray | None = None,
    ) -> LexicalResult:
        """BM25 top-``n`` among documents matching ``filter``, and the scores of ``also``."""
        ...

    def lexical_score_texts(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """BM25 of outside texts under this collection's statistics, and the query maximum."""
        ...

    def token_codes(self, iids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(T, width)`` stored token codes back to back, and per-document lengths."""
        ...

    def decode(self, codes: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Token codes -> vectors of ``dtype`` (the store's codec)."""
        ...

    def token_embeddings(self, iids: Sequence[int]) -> list[np.ndarray]:
        """Decoded ``(n_tokens, colbert_dim)`` token embeddings per document."""
        ...


class StorageBackend(Protocol):
    """Where a collection lives. See the module docstring for the contract."""

    @property
    def info(self) -> StoreInfo:
        """What the stored data was made with."""
        ...

    def read(self) -> AbstractContextManager[ReadView]:
        """A consistent read view for the duration of the ``with`` block."""
        ...

    def write(
        self,
        batch: WriteBatch,
        *,
        dense_model: str | None = None,
        colbert_model: str | None = None,
    ) -> WriteResult:
        """Apply a batch whole, or raise and change nothing.

        ``dense_model`` / ``colbert_model`` name the encoders that made the batch's
        vectors; they are recorded in :attr:`info`.
        """
        ...

    def stats(self) -> dict[str, Any]:
        """Sizes: documents, tokens, bytes, codec, dimensions."""
        ...

    def rewrite_tokens(
        self,
        produce: TokenProducer,
        *,
        codec: str,
        pool_factor: int,
        colbert_model: str,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Replace every document's stored tokens with ``produce``'s, all at once.

        Searches see the old tokens until then; records the new codec, pooling and model.
        """
        ...

    def save(self, root: Path, extra: dict[str, Any]) -> Path:
        """Write the collection to the folder ``root``, ``extra`` in its manifest.

        A backend whose every write is already durable (a database) raises
        :class:`~colrank.errors.InvalidInputError`: there is nothing to save. An empty
        collection is refused the same way.
        """
        ...

    def save_config(self, config: dict[str, Any]) -> None:
        """Keep the index's settings with the collection.

        A database keeps them at once (``ColrankIndex.open`` reads them back); a backend
        that persists on :meth:`save` keeps them there instead and does nothing here.
        """
        ...

    def close(self) -> None:
        """Release files, connections and memory maps."""
        ...


__all__ = [
    "DocumentRows",
    "LexicalResult",
    "OnConflict",
    "OnMissing",
    "ReadView",
    "StorageBackend",
    "StoreInfo",
    "StoredDoc",
    "TokenProducer",
    "WriteBatch",
    "WriteResult",
]
