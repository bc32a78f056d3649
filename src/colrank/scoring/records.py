"""What the stages of a search hand on: the recall record and the ColBERT scores.

Example:
    >>> import numpy as np
    >>> best = np.array([[0.5, 1.0], [0.25, 0.25]])
    >>> ColbertScores.from_best(best).total.tolist(), ColbertScores.from_best(best).mean.tolist()
    ([1.5, 0.5], [0.75, 0.25])
    >>> bm25_share(np.array([2.0, np.nan]), 4.0).tolist()
    [0.5, nan]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Recall:
    """One query's candidates in first-stage order, with each first-stage score.

    ``iids`` are the candidates' ids: internal ids of stored documents, or positions in
    the caller's list for documents given to ``rerank``. ``first`` is the first-stage
    score; ``dense`` / ``bm25`` each stage's own (NaN where it did not score).
    ``bm25_max`` is the largest BM25 score any document could get for the query (the
    sum of the query terms' IDFs; NaN when BM25 took no part).
    """

    iids: np.ndarray
    first: np.ndarray
    dense: np.ndarray
    bm25: np.ndarray
    bm25_max: float = float("nan")

    @property
    def bm25_share(self) -> np.ndarray:
        """BM25 as a share of the query's largest possible score (see :func:`bm25_share`)."""
        return bm25_share(self.bm25, self.bm25_max)


def bm25_share(bm25: np.ndarray, bm25_max: float) -> np.ndarray:
    """BM25 / the query's largest possible BM25, in [0, 1]; NaN where unscored.

    A query none of whose terms is in the corpus has no lexical evidence: 0 for all.
    """
    bm25 = np.asarray(bm25, dtype=np.float64)
    if not np.isfinite(bm25_max):
        return np.full(len(bm25), np.nan)
    if bm25_max <= 0:
        return np.where(np.isfinite(bm25), 0.0, np.nan)
    return bm25 / bm25_max


@dataclass(frozen=True)
class ColbertScores:
    """MaxSim per candidate: ``total`` (the sum over query tokens) and ``mean`` (per token).

    ``mean`` is the fixed-scale ColBERT score the calibrated fusion uses.
    """

    total: np.ndarray
    mean: np.ndarray

    @classmethod
    def from_best(cls, best: np.ndarray) -> ColbertScores:
        """From ``(N, Lq)`` per-query-token maxima."""
        best = np.asarray(best, dtype=np.float64)
        return cls(best.sum(axis=1), best.mean(axis=1))

    @classmethod
    def empty(cls, n: int = 0) -> ColbertScores:
        """``n`` candidates not scored yet (NaN)."""
        return cls(np.full(n, np.nan), np.full(n, np.nan))


__all__ = ["ColbertScores", "Recall", "bm25_share"]
