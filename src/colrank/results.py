"""Small typed objects that go in and out of the engine.

Example:
    >>> hit = Hit(id="d1", text="hello", metadata={}, score=12.5, dense_score=0.7, rank=1)
    >>> hit.score > 0 and hit.rank == 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Document:
    """A document given to :meth:`ColrankIndex.rerank`, or read back with ``get``."""

    text: str
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One ranked result.

    Attributes:
        id: the document's id (None for id-less texts given to ``rerank``).
        text: the document text.
        metadata: the document metadata (a fresh dict; safe to change).
        score: the score this list is ordered by. By default (``rerank_fusion=
            "calibrated"``) for ``search`` and ``rerank`` alike: a weighted mean of the
            dense cosine, BM25 as a share of the query's largest possible BM25 and
            ColBERT MaxSim per query token. Each has a fixed scale, so the score is
            comparable across queries and can be thresholded (about 0.2-0.9 in
            practice; see docs/search.md). Scores from one index compare; a reranker
            with no index leaves BM25 out (no corpus statistics), so its scores do not
            compare with an index's. ``"interpolate"`` and ``"rrf"`` rescale or rank
            within one call's candidates: they order one list only. ``"none"`` is
            ColBERT MaxSim alone; with a third stage, the cross-encoder's score; for
            ``recall`` / ``dense_search``, the first-stage score.
        dense_score: inner product of the dense vectors (None when the dense stage
            did not score the document, e.g. BM25-only recall).
        rank: 1-based position in this result list.
        position: for ``rerank``, the document's position in the input list.
        colbert_score: the ColBERT MaxSim score (None for first-stage-only results).
        bm25_score: the BM25 score (None unless BM25 took part in recall).
        cross_encoder_score: the cross-encoder score (None without a third stage).
    """

    id: str | None
    text: str
    metadata: dict[str, Any]
    score: float
    dense_score: float | None
    rank: int
    position: int | None = None
    colbert_score: float | None = None
    bm25_score: float | None = None
    cross_encoder_score: float | None = None


@dataclass(frozen=True)
class CandidateScores:
    """One query's candidates in first-stage order, with each stage's scores (NaN: unscored).

    ``final_scores`` is what :meth:`ColrankIndex.search` orders them by with the
    index's search settings (without a cross-encoder stage).
    """

    ids: list[str]
    dense_scores: np.ndarray
    colbert_scores: np.ndarray
    bm25_scores: np.ndarray
    first_stage_scores: np.ndarray
    final_scores: np.ndarray


def stage_scores(hit: Hit) -> dict[str, float]:
    """The per-stage scores a hit carries (``dense_score``, ``colbert_score``, ...)."""
    names = ("dense_score", "colbert_score", "bm25_score", "cross_encoder_score")
    return {name: getattr(hit, name) for name in names if getattr(hit, name) is not None}


def with_scores(metadata: dict[str, Any], scores: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` with colrank's score keys added, the user's own kept.

    A user key that a score key would overwrite (``rank``, ``relevance_score``,
    ``dense_score`` ...) moves to ``user_<key>`` instead of being lost.

    Example:
        >>> with_scores({"rank": "senior", "topic": "x"}, {"rank": 1})
        {'topic': 'x', 'user_rank': 'senior', 'rank': 1}
    """
    out = dict(metadata)
    for key in scores:
        if key in out:
            out[f"user_{key}"] = out.pop(key)
    out.update(scores)
    return out


__all__ = ["CandidateScores", "Document", "Hit", "stage_scores", "with_scores"]
