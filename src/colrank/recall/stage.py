"""Step 1 of a search: recall candidates from a read view (dense, BM25 or hybrid).

Hybrid recall scores the union of the dense top-n and the BM25 top-n exactly on both
(BM25 of the dense candidates, cosine of the BM25-only candidates from their stored
vectors) and keeps the best n by the fused first-stage score.

Example:
    >>> import numpy as np
    >>> from colrank.config import SearchConfig
    >>> from colrank.store.local.backend import LocalBackend
    >>> with LocalBackend().read() as view:       # an empty collection recalls nothing
    ...     len(recall(view, ["q"], np.zeros((1, 2), "float32"), 5, None, SearchConfig())[0].iids)
    0
"""

from __future__ import annotations

import numpy as np

from colrank.config import SearchConfig
from colrank.recall.candidates import from_bm25, from_dense, fuse_hybrid
from colrank.scoring.records import Recall
from colrank.store.base import ReadView
from colrank.store.filters import Filter
from colrank.timing import Timings, timed


def recall(
    view: ReadView,
    queries: list[str],
    vectors: np.ndarray | None,
    n: int,
    filter: Filter | None,  # noqa: A002
    strategy: SearchConfig,
    timings: Timings | None = None,
) -> list[Recall]:
    """Each query's candidates in first-stage order (``vectors``: dense query vectors)."""
    mode = strategy.first_stage
    dense: list[Recall] = []
    if mode in ("dense", "hybrid"):
        if vectors is None:
            raise ValueError(f"{mode} recall needs the dense query vectors")
        with timed(timings, "faiss"):
            scores, iids = view.dense_search(vectors, n, filter)
        dense = [from_dense(s, i) for s, i in zip(scores, iids, strict=True)]
        if mode == "dense":
            return dense
    out = []
    for qi, query in enumerate(queries):
        also = dense[qi].iids if mode == "hybrid" else None
        with timed(timings, "bm25"):
            lexical = view.lexical_search(query, n, filter, also)
        found = from_bm25(lexical.scores, lexical.iids, bm25_max=lexical.query_max)
        if also is None:
            out.append(found)
            continue
        with timed(timings, "hybrid_fusion"):
            assert vectors is not None  # checked above for hybrid
            out.append(_hybrid(view, dense[qi], found, lexical.also, vectors[qi], n, strategy))
    return out


def _hybrid(
    view: ReadView,
    dense: Recall,
    lexical: Recall,
    bm25_of_dense: np.ndarray,
    vector: np.ndarray,
    n: int,
    strategy: SearchConfig,
) -> Recall:
    only_lexical = np.setdiff1d(lexical.iids, dense.iids)
    exact = view.dense_vectors(only_lexical) @ vector if len(only_lexical) else np.zeros(0)
    return fuse_hybrid(
        dense,
        lexical,
        n,
        method=strategy.hybrid_fusion,
        dense_weight=strategy.hybrid_dense_weight,
        bm25_weight=strategy.bm25_weight,
        rrf_k=strategy.rrf_k,
        dense_of=dict(zip(only_lexical.tolist(), exact.tolist(), strict=True)),
        bm25_of=dict(zip(dense.iids.tolist(), bm25_of_dense.tolist(), strict=True)),
    )


__all__ = ["recall"]
