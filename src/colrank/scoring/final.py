"""The final score of a candidate, and the one place a :class:`~colrank.results.Hit` is made.

The default final score is *calibrated*: a weighted mean of stage scores on fixed
scales (dense cosine, BM25 as a share of the query's largest possible BM25, ColBERT
MaxSim per query token), so it means the same for every query and can be
thresholded. The other fusions (``interpolate``, ``rrf``) rescale or rank within one
query's candidates, so their scores compare only within one result list; ``none`` is
ColBERT MaxSim alone. See :class:`~colrank.config.SearchConfig` and docs/search.md.

Example:
    >>> import numpy as np
    >>> calibrated_score(np.array([0.8]), np.array([0.5]), np.array([0.6]), 0.3, 0.2).round(3)
    array([0.688])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from colrank.config import STAND_IN_COLBERT_WEIGHT, TRAINED_COLBERT_WEIGHT, SearchConfig
from colrank.results import Hit
from colrank.scoring.fusion import calibrated, interpolate, rrf
from colrank.scoring.records import ColbertScores, Recall


class Candidate(Protocol):
    """What a hit is made from: a stored document, or one the caller gave."""

    @property
    def id(self) -> str | None: ...  # noqa: D102

    @property
    def text(self) -> str: ...  # noqa: D102

    @property
    def metadata(self) -> Mapping[str, Any]: ...  # noqa: D102


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
        # tied candidates share a rank: a document's score must not depend on the order the
        # candidates came in (search, or rerank of the same documents in any order)
        return rrf([colbert.total, recall.first], k=strategy.rrf_k, shared_ties=True)
    return colbert.total


def to_hits(
    docs: Sequence[Candidate],
    scores: np.ndarray,
    recall: Recall,
    colbert: np.ndarray | None,
    rows: np.ndarray,
    cross: np.ndarray | None = None,
    given: bool = False,
) -> list[Hit]:
    """Hits in the given order; ``rows`` index the ``recall`` / ``colbert`` rows.

    ``given``: the candidates are the caller's documents, so ``Hit.position`` is each
    one's place in the caller's list (its id in ``recall``).
    """
    return [
        Hit(
            id=doc.id,
            text=doc.text,
            metadata=dict(doc.metadata),
            score=float(scores[rank - 1]),
            dense_score=optional(recall.dense[p]),
            rank=rank,
            position=int(recall.iids[p]) if given else None,
            colbert_score=None if colbert is None else float(colbert[p]),
            bm25_score=optional(recall.bm25[p]),
            cross_encoder_score=None if cross is None else float(cross[rank - 1]),
        )
        for rank, (p, doc) in enumerate(zip(rows, docs, strict=True), start=1)
    ]


def optional(value: float) -> float | None:
    """A stage score, or None where the stage did not score (NaN)."""
    return None if not np.isfinite(value) else float(value)


__all__ = ["Candidate", "calibrated_score", "colbert_share", "final_scores", "optional", "to_hits"]
