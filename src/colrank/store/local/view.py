"""A consistent read view over a :class:`~colrank.store.local.backend.LocalBackend`.

Valid inside ``with backend.read() as view:``, while the backend holds its read lock.

Example:
    >>> from colrank.store.local.backend import LocalBackend
    >>> with LocalBackend().read() as view:
    ...     view.count(), view.allowed({"topic": "ir"}).tolist()
    (0, [])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from colrank.index_settings import MuveraConfig
from colrank.store.base import LexicalResult, StoredDoc
from colrank.store.filters import Filter
from colrank.store.local.dense_index import no_hits

if TYPE_CHECKING:
    from colrank.store.local.backend import LocalBackend


class LocalReadView:
    """A :class:`~colrank.store.base.ReadView` over a :class:`LocalBackend`.

    A filter is compiled to the set of matching ids once per view, and used inside the
    FAISS search (an ``IDSelector``) and the BM25 scoring alike.
    """

    def __init__(self, backend: LocalBackend) -> None:
        self._b = backend
        self._allowed: dict[int, tuple[Filter, np.ndarray]] = {}

    def count(self) -> int:
        """Live documents."""
        return len(self._b.docs)

    def ids(self, filter: Filter | None = None) -> list[str]:  # noqa: A002
        """User ids in insertion order; only those matching ``filter`` if given."""
        allowed = self.allowed(filter)
        if allowed is None:
            return self._b.docs.ids()
        return [d.id for d in self._b.docs.get(allowed.tolist())]

    def iids_for(self, ids: Sequence[str]) -> dict[str, int]:
        """User id -> internal id for stored ids."""
        return self._b.docs.iids_for(ids)

    def documents(self, iids: Sequence[int]) -> list[StoredDoc]:
        """Stored documents, in the given order."""
        return self._b.docs.get([int(i) for i in iids])

    def allowed(self, filter: Filter | None) -> np.ndarray | None:  # noqa: A002
        """Internal ids matching ``filter`` (None: no filter), computed once per filter."""
        if not filter:
            return None
        key = id(filter)
        if key not in self._allowed:  # the filter object is kept, so its id stays unique
            iids = np.asarray(self._b.docs.matching_iids(filter), dtype=np.int64)
            self._allowed[key] = (filter, iids)
        return self._allowed[key][1]

    def dense_search(
        self,
        vectors: np.ndarray,
        n: int,
        filter: Filter | None,  # noqa: A002
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS top-``n`` among the matching documents."""
        allowed = self.allowed(filter)
        if self._b.dense is None:
            return no_hits(len(vectors))
        return self._b.dense.search(vectors, n, allowed)

    def fde_search(
        self,
        query_tokens: Sequence[np.ndarray],
        n: int,
        filter: Filter | None,  # noqa: A002
        config: MuveraConfig,
    ) -> tuple[np.ndarray, np.ndarray]:
        """MUVERA top-``n`` per query among the matching documents (built on first use)."""
        allowed = self.allowed(filter)
        if self._b.dense is None:
            return no_hits(len(query_tokens))
        return self._b.fde_index(config).search(query_tokens, n, allowed)

    def fde_scores(
        self,
        query_tokens: np.ndarray,
        iids: Sequence[int],
        others: Sequence[np.ndarray],
        config: MuveraConfig,
    ) -> np.ndarray:
        """MUVERA inner products of one query with stored documents, then outside token sets."""
        return self._b.fde_index(config).scores(query_tokens, iids, others)

    def dense_vectors(self, iids: Sequence[int]) -> np.ndarray:
        """Stored dense vectors."""
        dense, _ = self._b.stores()
        return dense.vectors(np.asarray(iids, dtype=np.int64))

    def lexical_search(
        self,
        query: str,
        n: int,
        filter: Filter | None,  # noqa: A002
        also: np.ndarray | None = None,
    ) -> LexicalResult:
        """BM25 top-``n`` among the matching documents, and the scores of ``also``."""
        bm25 = self._b.bm25
        full, query_max = bm25.scores_and_max(query, self.allowed(filter))
        scores, iids = bm25.top(full, n)
        picked = bm25.pick(full, also) if also is not None else np.zeros(0)
        picked = np.where(np.isneginf(picked), np.nan, picked)  # filtered out: not scored
        return LexicalResult(scores, iids, query_max, picked)

    def lexical_score_texts(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """BM25 of outside texts under this collection's statistics."""
        return self._b.bm25.score_texts_and_max(query, texts)

    def token_codes(self, iids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Stored token codes back to back, and lengths."""
        _, tokens = self._b.stores()
        return tokens.gather_codes(iids)

    def decode(self, codes: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes -> vectors of ``dtype``."""
        _, tokens = self._b.stores()
        return tokens.codec.decode(codes, dtype)

    def token_embeddings(self, iids: Sequence[int]) -> list[np.ndarray]:
        """Decoded token embeddings per document."""
        _, tokens = self._b.stores()
        return tokens.get(iids)


__all__ = ["LocalReadView"]
