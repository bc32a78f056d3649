"""Score and rank fusion: pure functions over arrays, no models.

- :func:`minmax` rescales one query's scores to [0, 1] (constant scores -> 0.5).
- :func:`interpolate` mixes two score arrays after min-max normalisation.
- :func:`rrf` is reciprocal rank fusion, ``sum_i w_i / (k + rank_i)`` (ranks from 1);
  a candidate missing from a ranking gets nothing from it.
- :func:`calibrated` is the default: a weighted mean of stage scores that each have a
  fixed scale (dense cosine, BM25 as a share of the query's largest possible score,
  ColBERT MaxSim per query token), so a score means the same for every query and
  candidate depth and can be thresholded (docs/search.md).

Example:
    >>> import numpy as np
    >>> interpolate(np.array([1.0, 3.0]), np.array([0.2, 0.1]), weight=0.5).tolist()
    [0.5, 0.5]
    >>> rrf([np.array([2.0, 1.0]), np.array([1.0, 2.0])], k=60).round(4).tolist()
    [0.0325, 0.0325]
    >>> calibrated([np.array([0.8, 0.4]), np.array([0.2, np.nan])], [0.75, 0.25]).round(4).tolist()
    [0.65, 0.4]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def minmax(scores: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1]; NaN (missing) stays NaN; all-equal scores become 0.5."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return np.full_like(scores, np.nan)
    low, high = finite.min(), finite.max()
    if high - low <= 1e-12:
        return np.where(np.isfinite(scores), 0.5, np.nan)
    return (scores - low) / (high - low)


def interpolate(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """``weight * minmax(first) + (1 - weight) * minmax(second)``; NaN counts as 0."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], not {weight}")
    a = np.nan_to_num(minmax(first), nan=0.0)
    b = np.nan_to_num(minmax(second), nan=0.0)
    return weight * a + (1.0 - weight) * b


def ranks(scores: np.ndarray, *, shared_ties: bool = False) -> np.ndarray:
    """1-based ranks by descending score; NaN gets rank inf.

    Equal scores rank earlier first, or, with ``shared_ties``, all take the tie's best
    rank (the ranks then do not depend on the order of the candidates).
    """
    scores = np.asarray(scores, dtype=np.float64)
    key = -np.nan_to_num(scores, nan=-np.inf)
    order = np.argsort(key, kind="stable")
    out = np.empty(len(scores), dtype=np.float64)
    if shared_ties:
        out[order] = np.searchsorted(key[order], key[order], side="left") + 1
    else:
        out[order] = np.arange(1, len(scores) + 1)
    out[~np.isfinite(scores)] = np.inf
    return out


def rrf(
    score_lists: Sequence[np.ndarray],
    k: int = 60,
    weights: Sequence[float] | None = None,
    *,
    shared_ties: bool = False,
) -> np.ndarray:
    """Reciprocal rank fusion of several score arrays over the same candidates."""
    if k <= 0:
        raise ValueError("rrf k must be > 0")
    weights = [1.0] * len(score_lists) if weights is None else list(weights)
    total = np.zeros(len(score_lists[0]), dtype=np.float64)
    for scores, weight in zip(score_lists, weights, strict=True):
        total += weight / (k + ranks(scores, shared_ties=shared_ties))
    return total


def calibrated(stage_scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of stage scores on fixed scales (no per-query rescaling).

    A NaN score (that stage did not score the candidate) is left out and the other
    weights renormalised, so the result stays on the same scale. All-NaN gives NaN.
    """
    scores = np.vstack([np.asarray(s, dtype=np.float64) for s in stage_scores])
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(scores),) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"need one non-negative weight per stage, not all zero: {weights}")
    present = np.isfinite(scores) * w[:, None]
    total = present.sum(axis=0)
    fused = (np.nan_to_num(scores, nan=0.0) * present).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, fused / total, np.nan)


__all__ = ["calibrated", "interpolate", "minmax", "ranks", "rrf"]
