"""Rank documents that come from elsewhere (another retriever, a database) by colrank's score.

One interface, :class:`Ranker` (``rank(query, documents, k)`` -> ranked hits, like
rerankers' ``BaseRanker``), serves :meth:`ColrankIndex.rerank`, the LangChain
compressor and the LlamaIndex postprocessor. :class:`TextRanker` gives the same score
as a search: a candidate whose id is stored in the collection with the same text is
scored from its *stored* tokens and vector; others are encoded once and kept in a
byte-bounded LRU cache by content hash, in the cache's precision from their first
sight, so a document scores the same every time it is seen. BM25 is taken under the
collection's statistics when there is one.

Example:
    >>> from colrank.config import ColrankConfig
    >>> ranker = TextRanker.from_config(ColrankConfig.offline())         # doctest: +SKIP
    >>> hits = ranker.rank("why does bread rise?", ["Yeast makes CO2.", "Paris."])  # doctest: +SKIP
    >>> hits[0].position                                                  # doctest: +SKIP
    0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from colrank.config import ColrankConfig, SearchConfig
from colrank.errors import InvalidInputError
from colrank.models.pair import EncoderPair
from colrank.rank.final import calibrated_score, colbert_share, optional
from colrank.recall.candidates import bm25_share
from colrank.rerank.cache import TokenCache, content_key
from colrank.rerank.stored import score_embeddings
from colrank.results import Document, Hit
from colrank.storable import check_storable
from colrank.store.base import ReadView, StorageBackend
from colrank.validation import check_k, check_query


@runtime_checkable
class Ranker(Protocol):
    """Anything that orders documents for a query."""

    def rank(
        self, query: str, documents: Sequence[str | Document], k: int | None = None
    ) -> list[Hit]:
        """The documents best first (``Hit.position``: index in ``documents``), at most ``k``."""
        ...


class TextRanker:
    """colrank's score for outside documents (stored embeddings where the index has them).

    Args:
        encoders: the dense and ColBERT encoders.
        search: the score settings (``rerank_fusion``, weights).
        backend: a collection whose stored embeddings and BM25 statistics to use.
        cache_bytes: bytes of encoded outside documents to keep (LRU).
    """

    def __init__(
        self,
        encoders: EncoderPair,
        search: SearchConfig | None = None,
        backend: StorageBackend | None = None,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        self.encoders = encoders
        self.search = search or SearchConfig()
        self.backend = backend
        self._tokens = TokenCache(cache_bytes)
        self._vectors = TokenCache(cache_bytes // 8, dtype="float32")

    @classmethod
    def from_config(cls, config: ColrankConfig | None = None) -> TextRanker:
        """A ranker with no collection: every document is encoded (and cached)."""
        config = config or ColrankConfig.from_env()
        return cls(EncoderPair(config), config.search, cache_bytes=config.rerank_cache_bytes)

    def clear_cache(self) -> None:
        """Forget cached encodings (e.g. after switching the ColBERT model)."""
        self._tokens.clear()
        self._vectors.clear()

    def rank(
        self, query: str, documents: Sequence[str | Document], k: int | None = None
    ) -> list[Hit]:
        """Order ``documents`` for ``query``; ``Hit.score`` is what a search would give."""
        query = check_query(query)
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise InvalidInputError("documents must be a list of strings or Document objects")
        docs = [as_document(d, i) for i, d in enumerate(documents)]
        if k is not None:
            k = check_k(k)
        if not docs:
            return []
        fused = self.search.rerank_fusion == "calibrated"
        vectors, q_tokens = self.encoders.encode_queries([query], dense=fused)
        token_sets: list[np.ndarray | None] = [None] * len(docs)
        dense_rows: dict[int, np.ndarray] = {}
        bm25 = share = np.full(len(docs), np.nan)
        if self.backend is not None:
            with self.backend.read() as view:
                self._stored(view, docs, token_sets, dense_rows, fused)
                if fused and view.count():
                    bm25, top = view.lexical_score_texts(query, [d.text for d in docs])
                    share = bm25_share(bm25, top)
        others = [j for j in range(len(docs)) if token_sets[j] is None]
        if others:
            their_tokens, their_vectors = self._encoded([docs[j].text for j in others], fused)
            for j, t in zip(others, their_tokens, strict=True):
                token_sets[j] = t
            dense_rows.update(zip(others, their_vectors, strict=False))  # none unless fused
        colbert = score_embeddings(  # in the precision the search multiplies in
            q_tokens[0], [t for t in token_sets if t is not None], self.encoders.maxsim_dtype
        )
        dense = np.full(len(docs), np.nan)
        scores = colbert.total
        if fused:
            assert vectors is not None
            dense = np.stack([dense_rows[j] for j in range(len(docs))]) @ vectors[0]
            weight = colbert_share(self.search, self.encoders.colbert.is_stand_in)
            scores = calibrated_score(dense, share, colbert.mean, self.search.bm25_weight, weight)
        order = np.argsort(-scores, kind="stable")[: k or len(docs)]
        return [
            Hit(
                id=docs[j].id,
                text=docs[j].text,
                metadata=dict(docs[j].metadata),
                score=float(scores[j]),
                dense_score=optional(dense[j]),
                rank=rank,
                position=int(j),
                colbert_score=float(colbert.total[j]),
                bm25_score=optional(bm25[j]),
            )
            for rank, j in enumerate(order, start=1)
        ]

    @staticmethod
    def _stored(
        view: ReadView,
        docs: list[Document],
        token_sets: list[np.ndarray | None],
        dense_rows: dict[int, np.ndarray],
        fused: bool,
    ) -> None:
        """Fill in the stored embeddings of documents indexed under their id with that text."""
        ids = [d.id for d in docs if d.id is not None]
        found = view.iids_for(ids) if ids else {}
        if not found:
            return
        texts = {d.iid: d.text for d in view.documents(list(found.values()))}
        stored = {
            j: found[d.id]
            for j, d in enumerate(docs)
            if d.id in found and texts[found[d.id]] == d.text
        }
        if not stored:
            return
        iids = list(stored.values())
        for j, tokens in zip(stored, view.token_embeddings(iids), strict=True):
            token_sets[j] = tokens
        if fused:
            dense_rows.update(zip(stored, view.dense_vectors(iids), strict=True))

    def _encoded(self, texts: list[str], fused: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """ColBERT tokens (and dense vectors when ``fused``) of outside texts, via the caches.

        Texts missing from a cache are encoded in one call of the encoder pair (one
        backbone call for both kinds when the models share it, in the configured engine).
        A text is returned in the cache's precision also on its first sight, so it scores
        the same every time it is seen.
        """
        keys = [content_key(t) for t in texts]
        caches = [self._tokens, self._vectors] if fused else [self._tokens]
        found: list[dict[str, np.ndarray]] = [{} for _ in caches]
        for cache, hits in zip(caches, found, strict=True):
            for key in keys:
                value = cache.get(key)
                if value is not None:
                    hits[key] = value
        missing = list(dict.fromkeys(k for k in keys if any(k not in hits for hits in found)))
        if missing:
            first_text = dict(zip(keys, texts, strict=True))
            batch = [first_text[key] for key in missing]
            if fused:
                vectors, tokens = self.encoders.encode_documents(batch, progress=False)
                encoded = [tokens, list(vectors)]
            else:
                encoded = [self.encoders.encode_document_tokens(batch, progress=False)]
            for cache, hits, values in zip(caches, found, encoded, strict=True):
                for key, value in zip(missing, values, strict=True):
                    hits[key] = np.asarray(value, dtype=cache.dtype)
                    cache.put(key, hits[key])
        out = [[np.asarray(hits[key], dtype=np.float32) for key in keys] for hits in found]
        return out[0], (out[1] if fused else [])


def as_document(item: str | Document | Mapping[str, Any], position: int) -> Document:
    """A :class:`Document` from a string, a Document, or a ``{"text", "id", "metadata"}`` dict."""
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, str):
        doc = Document(item)
    elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
        doc = Document(item["text"], item.get("id"), dict(item.get("metadata") or {}))
    else:
        raise InvalidInputError(
            f"documents[{position}] is a {type(item).__name__}; pass strings or colrank.Document"
        )
    if not isinstance(doc.text, str):
        raise InvalidInputError(f"documents[{position}].text is not a string")
    check_storable(doc.text, f"documents[{position}].text")
    return doc


__all__ = ["Ranker", "TextRanker", "as_document"]
