"""Step 3 of a search: the final score, an optional cross-encoder, and the hits.

The default final score is *calibrated*: a weighted mean of stage scores on fixed
scales (dense cosine, BM25 as a share of the query's largest possible BM25, ColBERT
MaxSim per query token), so it means the same for every query and can be
thresholded. See :class:`~colrank.config.SearchConfig` and docs/search.md.

Example:
    >>> import numpy as np
    >>> calibrated_score(np.array([0.8]), np.array([0.5]), np.array([0.6]), 0.3, 0.2).round(3)
    array([0.688])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from colrank.config import STAND_IN_COLBERT_WEIGHT, TRAINED_COLBERT_WEIGHT, SearchConfig
from colrank.rank.cross_encoder import CrossEncoderScorer
from colrank.rank.fusion import calibrated, interpolate, rrf
from colrank.recall.candidates import Recall
from colrank.rerank.stored import ColbertScores
from colrank.results import Hit
from colrank.store.base import StoredDoc
from colrank.timing import Timings, timed


def colbert_share(strategy: SearchConfig, is_stand_in: bool) -> float:
    """ColBERT's share of the calibrated score: the configured one, or by the model.

    An untrained stand-in ColBERT (the offline MiniLM) gets ``STAND_IN_COLBERT_WEIGHT``,
    a trained checkpoint ``TRAINED_COLBERT_WEIGHT``.
    """
    if strategy.colbert_weight is not None:
        return strategy.colbert_weight
    return STAND_IN_COLBERT_WEIGHT if is_stand_in else TRAINED_COLBERT_WEIGHT


def calibrated_score(
    dense: np.ndarray,
    bm25_share: np.ndarray,
    colbert_mean: np.ndarray,
    bm25_weight: float,
    colbert_weight: float,
) -> np.ndarray:
    """``(1 - wc) * ((1 - wb) * dense + wb * bm25_share) + wc * colbert_mean``.

    A stage that did not score a document (NaN) is left out of its mean.
    """
    first = calibrated([dense, bm25_share], [1.0 - bm25_weight, bm25_weight])
    if colbert_weight >= 1:
        return colbert_mean
    return calibrated([first, colbert_mean], [1.0 - colbert_weight, colbert_weight])


def final_scores(
    recall: Recall, colbert: ColbertScores, strategy: SearchConfig, colbert_weight: float
) -> np.ndarray:
    """The score the final order is made by (before an optional cross-encoder)."""
    if strategy.rerank_fusion == "calibrated":
        return calibrated_score(
            recall.dense, recall.bm25_share, colbert.mean, strategy.bm25_weight, colbert_weight
        )
    if strategy.rerank_fusion == "interpolate":
        weight = 0.5 if strategy.colbert_weight is None else strategy.colbert_weight
        return interpolate(colbert.total, recall.first, weight)
    if strategy.rerank_fusion == "rrf":
        return rrf([colbert.total, recall.first], k=strategy.rrf_k)
    return colbert.total


def rank_candidates(
    query: str,
    recall: Recall,
    colbert: ColbertScores,
    k: int,
    strategy: SearchConfig,
    colbert_weight: float,
    documents: Callable[[list[int]], list[StoredDoc]],
    cross_encoder: Callable[[str], CrossEncoderScorer],
    timings: Timings | None = None,
) -> list[Hit]:
    """The top ``k`` hits of one query, by the final score (or the cross-encoder's)."""
    final = final_scores(recall, colbert, strategy, colbert_weight)
    order = np.argsort(-final, kind="stable")
    if not strategy.cross_encoder_model or len(order) == 0:
        top = order[:k]
        with timed(timings, "docstore"):
            docs = documents(recall.iids[top].tolist())
        return to_hits(docs, final[top], recall, colbert.total, top)
    top = order[: max(k, strategy.cross_encoder_top)]
    with timed(timings, "docstore"):
        docs = documents(recall.iids[top].tolist())
    with timed(timings, "cross_encoder"):
        scorer = cross_encoder(strategy.cross_encoder_model)
        ce = scorer.score(query, [d.text for d in docs]).astype(np.float64)
    best = np.argsort(-ce, kind="stable")[:k]
    return to_hits(
        [docs[b] for b in best], ce[best], recall, colbert.total, top[best], cross=ce[best]
    )


def to_hits(
    docs: list[StoredDoc],
    scores: np.ndarray,
    recall: Recall,
    colbert: np.ndarray | None,
    positions: np.ndarray,
    cross: np.ndarray | None = None,
) -> list[Hit]:
    """Hits in the given order; ``positions`` index the ``recall`` / ``colbert`` rows."""
    return [
        Hit(
            id=doc.id,
            text=doc.text,
            metadata=doc.metadata,
            score=float(scores[rank - 1]),
            dense_score=optional(recall.dense[p]),
            rank=rank,
            colbert_score=None if colbert is None else float(colbert[p]),
            bm25_score=optional(recall.bm25[p]),
            cross_encoder_score=None if cross is None else float(cross[rank - 1]),
        )
        for rank, (p, doc) in enumerate(zip(positions, docs, strict=True), start=1)
    ]


def optional(value: float) -> float | None:
    """A stage score, or None where the stage did not score (NaN)."""
    return None if not np.isfinite(value) else float(value)


__all__ = [
    "calibrated_score",
    "colbert_share",
    "final_scores",
    "optional",
    "rank_candidates",
    "to_hits",
]
