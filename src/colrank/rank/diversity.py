"""Maximal marginal relevance: a relevant *and* varied top-k from a longer ranked list.

Relevance is colrank's own final score of each candidate (so the two-stage search still
decides what is relevant); redundancy is the cosine between the candidates' stored dense
vectors. Each step picks ``argmax lambda * relevance - (1 - lambda) * max cosine to the
already picked`` (Carbonell and Goldstein, 1998).

Example:
    >>> import numpy as np
    >>> vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> mmr(np.array([0.9, 0.85, 0.5]), vectors, k=2, lambda_mult=0.5)  # the twin is skipped
    [0, 2]
"""

from __future__ import annotations

import numpy as np


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float = 0.5) -> list[int]:
    """Positions of ``k`` candidates in MMR order (``lambda_mult`` 1: relevance only)."""
    if not 0.0 <= lambda_mult <= 1.0:
        raise ValueError(f"lambda_mult must be in [0, 1], not {lambda_mult}")
    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    similarity = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    chosen = [int(np.argmax(relevance))]
    redundancy = similarity[chosen[0]].copy()
    left = np.ones(n, dtype=bool)
    left[chosen[0]] = False
    while len(chosen) < min(k, n):
        score = lambda_mult * relevance - (1.0 - lambda_mult) * redundancy
        score[~left] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        left[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return chosen


__all__ = ["mmr"]
