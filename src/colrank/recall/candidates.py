"""First-stage recall: dense (FAISS), lexical (BM25), or both fused (hybrid).

Every strategy returns, per query, the candidates' internal ids in first-stage order
with their first-stage score and, where known, their dense and BM25 scores (NaN when
a stage did not score that document).

Example:
    >>> import numpy as np
    >>> from colrank.scoring.records import Recall
    >>> a = Recall(np.array([1, 2]), np.array([0.9, 0.8]), np.array([0.9, 0.8]), np.full(2, np.nan))
    >>> b = Recall(np.array([3, 1]), np.array([7.0, 2.0]), np.full(2, np.nan), np.array([7.0, 2.0]))
    >>> fuse_hybrid(a, b, n=3, method="rrf").iids.tolist()
    [1, 3, 2]
"""

from __future__ import annotations

import numpy as np

from colrank.scoring.fusion import calibrated, interpolate, rrf
from colrank.scoring.records import Recall, bm25_share


def from_dense(scores: np.ndarray, iids: np.ndarray) -> Recall:
    """Wrap one query's FAISS output (dropping the -1 padding)."""
    keep = iids >= 0
    dense = scores[keep].astype(np.float64)
    return Recall(iids[keep].astype(np.int64), dense, dense, np.full(len(dense), np.nan))


def from_bm25(scores: np.ndarray, iids: np.ndarray, bm25_max: float = np.nan) -> Recall:
    """Wrap one query's BM25 output."""
    bm25 = scores.astype(np.float64)
    return Recall(iids.astype(np.int64), bm25, np.full(len(bm25), np.nan), bm25, bm25_max)


def fuse_hybrid(
    dense: Recall,
    lexical: Recall,
    n: int,
    method: str = "rrf",
    dense_weight: float = 0.5,
    rrf_k: int = 60,
    dense_of: dict[int, float] | None = None,
    bm25_of: dict[int, float] | None = None,
    bm25_weight: float = 0.2,
) -> Recall:
    """Merge dense and BM25 candidates and keep the best ``n`` by the fused score.

    ``rrf`` uses each list's ranks (a document absent from a list gets nothing from
    it). ``weighted`` interpolates min-max normalised scores over the union.
    ``calibrated`` is ``(1 - bm25_weight) * cosine + bm25_weight * BM25 / bm25_max``
    (``lexical.bm25_max``), on fixed scales. For ``weighted`` and ``calibrated`` pass
    ``dense_of`` / ``bm25_of`` with the exact scores of documents the other list
    found, otherwise a missing score is left out (``calibrated``) or counts as the
    minimum (``weighted``).
    """
    union = list(dict.fromkeys([*dense.iids.tolist(), *lexical.iids.tolist()]))
    in_dense = dict(zip(dense.iids.tolist(), dense.dense.tolist(), strict=True))
    in_bm25 = dict(zip(lexical.iids.tolist(), lexical.bm25.tolist(), strict=True))
    listed_dense = np.array([in_dense.get(i, np.nan) for i in union])
    listed_bm25 = np.array([in_bm25.get(i, np.nan) for i in union])
    full_dense = np.array([in_dense.get(i, (dense_of or {}).get(i, np.nan)) for i in union])
    full_bm25 = np.array([in_bm25.get(i, (bm25_of or {}).get(i, np.nan)) for i in union])
    if method == "rrf":
        fused = rrf([listed_dense, listed_bm25], k=rrf_k)
    elif method == "weighted":
        fused = interpolate(full_dense, full_bm25, dense_weight)
    elif method == "calibrated":
        share = bm25_share(full_bm25, lexical.bm25_max)
        fused = calibrated([full_dense, share], [1.0 - bm25_weight, bm25_weight])
    else:
        raise ValueError(f"unknown hybrid fusion {method!r}")
    order = np.argsort(-np.nan_to_num(fused, nan=-np.inf), kind="stable")[:n]
    return Recall(
        np.asarray(union, dtype=np.int64)[order],
        fused[order],
        full_dense[order],
        full_bm25[order],
        lexical.bm25_max,
    )


__all__ = ["from_bm25", "from_dense", "fuse_hybrid"]
