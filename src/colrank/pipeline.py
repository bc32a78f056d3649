"""A search, stage by stage: encode -> recall -> stored-token MaxSim -> final ranking -> hits.

The queries are encoded first, outside any lock. Everything after runs inside one
read view of the backend, so recall, token fetch and document lookup all see the
same state of the collection, whatever writes happen meanwhile.

``rerank`` of documents the caller gives runs the same stages with another first
stage, the caller's candidates (:mod:`colrank.recall.given`): a document the index holds
(same id and text) is scored from its stored vector and tokens, others are encoded
(and cached); the score is made by the same functions
(:mod:`colrank.scoring.final`), so an indexed document gets the same score from
``search`` and ``rerank`` over the same candidates, for every ``rerank_fusion``.

=============  ============================  ===================================================
stage          module                        timings key
=============  ============================  ===================================================
encode         :mod:`colrank.models.pair`    ``encode`` (or ``dense_encode``, ``colbert_encode``)
recall         :mod:`colrank.recall.stage`   ``faiss``, ``bm25``, ``hybrid_fusion``
               :mod:`colrank.recall.muvera`  ``muvera``
given docs     :mod:`colrank.recall.given`   ``given``
stored tokens  :mod:`colrank.rerank.stored`  ``token_fetch``, ``maxsim``
final ranking  :mod:`colrank.rank.final`     ``docstore``, ``cross_encoder``
=============  ============================  ===================================================

Example:
    >>> from colrank import ColrankConfig
    >>> from colrank.models.pair import EncoderPair
    >>> from colrank.store.local.backend import LocalBackend
    >>> pipeline = SearchPipeline(LocalBackend(), EncoderPair(ColrankConfig.offline()))
    >>> pipeline.search(["anything"], k=3, candidates=10, filter=None,
    ...                 strategy=ColrankConfig().search)     # an empty collection
    [[]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from colrank.config import RuntimeConfig, SearchConfig
from colrank.models.pair import EncoderPair
from colrank.rank.cross_encoder import CrossEncoderScorer
from colrank.rank.diversity import mmr
from colrank.rank.final import rank_candidates
from colrank.recall.given import given_recall, stored_ids
from colrank.recall.muvera import muvera_given, muvera_recall
from colrank.recall.stage import recall
from colrank.rerank.outside import OutsideEncodings
from colrank.rerank.stored import score_mixed, score_stored
from colrank.rerank.visual import check_text_recall, visual_recall
from colrank.results import CandidateScores, Document, Hit
from colrank.scoring.final import colbert_share, final_scores, to_hits
from colrank.scoring.records import ColbertScores, Recall
from colrank.store.base import ReadView, StorageBackend
from colrank.store.filters import Filter
from colrank.timing import Timings, timed

ONE_THREAD_MAXSIM_ROWS = 65_536  # token rows scored on one thread beside ONNX Runtime
LATE_ONLY = ("visual", "muvera")  # first stages that need the query's ColBERT tokens alone


class SearchPipeline:
    """Runs searches over a backend with a pair of encoders.

    Args:
        backend: where the collection lives.
        encoders: the dense and ColBERT encoders (queries are encoded with them).
        cache_bytes: bytes of encoded outside documents (given to ``rerank``) to keep.
    """

    def __init__(
        self, backend: StorageBackend, encoders: EncoderPair, cache_bytes: int = 256 * 2**20
    ) -> None:
        self.backend = backend
        self.encoders = encoders
        self.outside = OutsideEncodings(encoders, cache_bytes)

    def _is_empty(self) -> bool:
        with self.backend.read() as view:
            return view.count() == 0

    def _encode(
        self, queries: list[str], strategy: SearchConfig, timings: Timings | None, colbert: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        dense = strategy.first_stage not in ("bm25", *LATE_ONLY)
        if not dense and not colbert:
            return None, []
        return self.encoders.encode_queries(queries, dense=dense, colbert=colbert, timings=timings)

    def _one_thread_rows(self) -> int:
        # one query's candidates (up to ~300 SciFact documents) beside ONNX Runtime: one
        # PyTorch thread. Measured on 2 cores, 100 candidates: +0.6 ms for a lone query,
        # and back to back the next query's encoding took 10.3 ms instead of 15-16 ms.
        return ONE_THREAD_MAXSIM_ROWS if self.encoders.encodes_with_onnx_runtime else 0

    def _score(
        self,
        view: ReadView,
        query_tokens: np.ndarray,
        iids: np.ndarray,
        timings: Timings | None = None,
    ) -> ColbertScores:
        dtype, rows = self.encoders.maxsim_dtype, self._one_thread_rows()
        return score_stored(view, query_tokens, iids, timings, dtype, rows)

    def search(
        self,
        queries: list[str],
        k: int,
        candidates: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
        timings: Timings | None = None,
    ) -> list[list[Hit]]:
        """The top ``k`` hits per query after recalling ``candidates`` and reranking them."""
        if not queries or self._is_empty():
            return [[] for _ in queries]
        vectors, tokens = self._encode(queries, strategy, timings, colbert=True)
        share = colbert_share(strategy, self.encoders.colbert.is_stand_in)
        runtime = self.encoders.config.runtime
        with self.backend.read() as view:
            stages = self._recall(
                view, queries, vectors, tokens, candidates, filter, strategy, timings
            )
            return [
                rank_candidates(
                    query,
                    r,
                    scored if scored is not None else self._score(view, q_tokens, r.iids, timings),
                    k,
                    strategy,
                    share,
                    view.documents,
                    lambda spec: _cross_encoder(spec, runtime),
                    timings,
                )
                for query, (r, scored), q_tokens in zip(queries, stages, tokens, strict=True)
            ]

    def _recall(
        self,
        view: ReadView,
        queries: list[str],
        vectors: np.ndarray | None,
        tokens: list[np.ndarray],
        n: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
        timings: Timings | None = None,
    ) -> list[tuple[Recall, ColbertScores | None]]:
        """Each query's candidates, with their MaxSim when the first stage computed it."""
        if strategy.first_stage == "visual":
            dtype, rows = self.encoders.maxsim_dtype, self._one_thread_rows()
            return [visual_recall(view, t, n, filter, dtype, rows, timings) for t in tokens]
        if strategy.first_stage == "muvera":
            found = muvera_recall(view, tokens, n, filter, self.encoders.config.muvera, timings)
            return [(r, None) for r in found]
        recalls = recall(view, queries, vectors, n, filter, strategy, timings)
        if self.encoders.is_visual:
            check_text_recall(view, recalls)
        return [(r, None) for r in recalls]

    def rerank(
        self,
        query: str,
        docs: list[Document],
        k: int,
        strategy: SearchConfig,
        encode_texts: list[str] | None = None,
        timings: Timings | None = None,
    ) -> list[Hit]:
        """The caller's documents ranked by the search's score (``Hit.position``: their index).

        ``encode_texts``: what to encode (and score with BM25) for documents the index
        does not hold, one per document (default: their text).
        """
        if not docs:
            return []
        texts = encode_texts if encode_texts is not None else [d.text for d in docs]
        late_only = strategy.first_stage in LATE_ONLY  # the late-interaction stage alone
        first = strategy.rerank_fusion != "none" and not late_only
        dense = first and strategy.first_stage != "bm25"
        given = strategy.overridden("dense") if late_only else strategy
        vectors, tokens = self.encoders.encode_queries(
            [query], dense=dense, colbert=True, timings=timings
        )
        with self.backend.read() as view:
            stored = stored_ids(view, docs)
        encoded = self._outside(texts, np.flatnonzero(stored < 0), dense, timings)  # no lock held
        share = colbert_share(strategy, self.encoders.colbert.is_stand_in)
        runtime = self.encoders.config.runtime
        with self.backend.read() as view:
            stored = stored_ids(view, docs)
            late = [j for j in np.flatnonzero(stored < 0) if j not in encoded]
            encoded.update(self._outside(texts, late, dense, timings))  # changed meanwhile
            outside = {j: encoded[j] for j in np.flatnonzero(stored < 0).tolist()}
            with timed(timings, "given"):
                r = given_recall(
                    view,
                    query,
                    texts,
                    stored,
                    None if vectors is None else vectors[0],
                    {j: vector for j, (_, vector) in outside.items() if vector is not None},
                    given,
                    lexical=first,
                )
            order = {int(p): row for row, p in enumerate(r.iids)}
            given_tokens = {order[j]: t for j, (t, _) in outside.items()}
            colbert = score_mixed(
                view,
                tokens[0],
                stored[r.iids],
                given_tokens,
                self.encoders.maxsim_dtype,
                self._one_thread_rows(),
            )
            if strategy.first_stage == "muvera" and view.count():  # as a search scores them
                muvera = self.encoders.config.muvera
                first = muvera_given(view, tokens[0], stored[r.iids], given_tokens, muvera)
                r = replace(r, first=first)
            elif late_only:  # the visual first stage scores by MaxSim per query token
                r = replace(r, first=colbert.mean)
            return rank_candidates(
                query,
                r,
                colbert,
                k,
                strategy,
                share,
                lambda positions: [docs[p] for p in positions],
                lambda spec: _cross_encoder(spec, runtime),
                timings,
                given=True,
            )

    def _outside(
        self, texts: list[str], rows: Sequence[int], dense: bool, timings: Timings | None
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Tokens (and dense vectors) of the documents at ``rows``, via the cache."""
        if not len(rows):
            return {}
        with timed(timings, "encode_documents"):
            tokens, vectors = self.outside.encode([texts[j] for j in rows], dense)
        found = vectors if dense else [None] * len(tokens)
        return {int(j): pair for j, pair in zip(rows, zip(tokens, found, strict=True), strict=True)}

    def recall_only(
        self,
        query: str,
        k: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
        timings: Timings | None = None,
    ) -> list[Hit]:
        """The first stage alone: the top ``k`` by the first-stage score."""
        if self._is_empty():
            return []
        late = strategy.first_stage in LATE_ONLY
        vectors, tokens = self._encode([query], strategy, timings, colbert=late)
        with self.backend.read() as view:
            r = self._recall(view, [query], vectors, tokens, k, filter, strategy, timings)[0][0]
            with timed(timings, "docstore"):
                docs = view.documents(r.iids[:k].tolist())
        return to_hits(docs, r.first[:k], r, None, np.arange(len(docs)))

    def diversify(self, hits: list[Hit], k: int, lambda_mult: float) -> list[Hit]:
        """``k`` of ``hits`` in MMR order (:func:`~colrank.rank.diversity.mmr`), re-ranked."""
        with self.backend.read() as view:
            found = view.iids_for([h.id for h in hits if h.id is not None])
            hits = [h for h in hits if h.id in found]  # a document deleted meanwhile is left out
            vectors = view.dense_vectors([found[h.id] for h in hits]) if hits else None
        if not hits:
            return []
        order = mmr(np.array([h.score for h in hits]), vectors, k, lambda_mult)
        return [replace(hits[j], rank=rank) for rank, j in enumerate(order, start=1)]

    def candidate_scores(
        self,
        queries: list[str],
        candidates: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
    ) -> list[CandidateScores]:
        """Every stage's scores for each query's candidates, in first-stage order."""
        if not queries or self._is_empty():
            empty = np.zeros(0)
            return [CandidateScores([], empty, empty, empty, empty, empty) for _ in queries]
        vectors, tokens = self._encode(queries, strategy, None, colbert=True)
        share = colbert_share(strategy, self.encoders.colbert.is_stand_in)
        out = []
        with self.backend.read() as view:
            stages = self._recall(view, queries, vectors, tokens, candidates, filter, strategy)
            for (r, scored), q_tokens in zip(stages, tokens, strict=True):
                colbert = scored if scored is not None else self._score(view, q_tokens, r.iids)
                ids = [d.id for d in view.documents(r.iids.tolist())]
                final = final_scores(r, colbert, strategy, share)
                out.append(CandidateScores(ids, r.dense, colbert.total, r.bm25, r.first, final))
        return out


def _cross_encoder(spec: str, runtime: RuntimeConfig) -> CrossEncoderScorer:
    return CrossEncoderScorer.load(spec, runtime)  # loaded models are cached by spec


__all__ = ["SearchPipeline"]
