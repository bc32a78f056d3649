"""The caller's candidates as a first stage: what ``rerank`` of given documents starts from.

The documents a caller gives are the candidates. Each gets the first-stage scores a
search would give it, fused the way the configured first stage fuses them: the dense
cosine (from its stored vector when the index holds it under its id with that text,
else from its encoded vector) and BM25 under the collection's statistics. After this
stage ``rerank`` runs what ``search`` runs, so an indexed document scores the same in
both when the candidates are the same.

Example:
    >>> import numpy as np
    >>> from colrank.config import SearchConfig
    >>> r = given_recall(None, "q", ["a", "b"], np.array([-1, -1]), np.array([1.0, 0.0]),
    ...                  {0: np.array([0.2, 0.9]), 1: np.array([0.8, 0.1])},
    ...                  SearchConfig(first_stage="dense"))
    >>> r.iids.tolist(), r.first.round(2).tolist()
    ([1, 0], [0.8, 0.2])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from colrank.config import SearchConfig
from colrank.recall.candidates import fuse_hybrid
from colrank.results import Document
from colrank.scoring.records import Recall
from colrank.store.base import ReadView


def stored_ids(view: ReadView, docs: Sequence[Document]) -> np.ndarray:
    """Each document's internal id where the index holds it under its id with that text; -1 else."""
    out = np.full(len(docs), -1, dtype=np.int64)
    found = view.iids_for([d.id for d in docs if d.id is not None])
    if not found:
        return out
    texts = {d.iid: d.text for d in view.documents(list(found.values()))}
    for j, doc in enumerate(docs):
        iid = found.get(doc.id) if doc.id is not None else None
        if iid is not None and texts[iid] == doc.text:
            out[j] = iid
    return out


def given_recall(
    view: ReadView | None,
    query: str,
    texts: Sequence[str],
    stored: np.ndarray,
    vector: np.ndarray | None,
    outside_vectors: dict[int, np.ndarray],
    strategy: SearchConfig,
    lexical: bool = True,
) -> Recall:
    """The caller's documents in first-stage order, ids being their positions.

    Args:
        view: the collection (None: no index, so no BM25 statistics).
        query: the question (for BM25).
        texts: the documents' texts as BM25 sees them.
        stored: each document's internal id, -1 when not stored (:func:`stored_ids`).
        vector: the dense query vector (None: no dense stage).
        outside_vectors: dense vectors of the documents that are not stored, by position.
        strategy: the first stage and its fusion.
        lexical: whether BM25 takes part (as it does in the first stage's own recall).
    """
    n = len(texts)
    mode = strategy.first_stage
    dense = np.full(n, np.nan)
    if vector is not None and mode != "bm25":
        dense = _dense(view, stored, vector, outside_vectors)
    bm25, bm25_max = np.full(n, np.nan), float("nan")
    if lexical and mode != "dense" and view is not None and view.count():
        bm25, bm25_max = _bm25(view, query, texts, stored)
    nothing = np.full(n, np.nan)
    if mode == "dense":
        order = np.argsort(-np.nan_to_num(dense, nan=-np.inf), kind="stable")
        return Recall(order, dense[order], dense[order], bm25[order], bm25_max)
    by_bm25 = np.argsort(-np.nan_to_num(bm25, nan=-np.inf), kind="stable")
    if mode == "bm25":
        return Recall(by_bm25, bm25[by_bm25], nothing, bm25[by_bm25], bm25_max)
    listed = by_bm25[bm25[by_bm25] > 0]  # a BM25 recall lists documents with a query term
    by_dense = np.argsort(-np.nan_to_num(dense, nan=-np.inf), kind="stable")
    return fuse_hybrid(
        Recall(by_dense, dense[by_dense], dense[by_dense], nothing),
        Recall(listed, bm25[listed], nothing[: len(listed)], bm25[listed], bm25_max),
        n,
        method=strategy.hybrid_fusion,
        dense_weight=strategy.hybrid_dense_weight,
        bm25_weight=strategy.bm25_weight,
        rrf_k=strategy.rrf_k,
        bm25_of=dict(enumerate(bm25.tolist())),
    )


def _dense(
    view: ReadView | None,
    stored: np.ndarray,
    vector: np.ndarray,
    outside_vectors: dict[int, np.ndarray],
) -> np.ndarray:
    dense = np.full(len(stored), np.nan)
    rows = np.flatnonzero(stored >= 0)
    if len(rows):
        assert view is not None  # stored ids come from a view
        dense[rows] = view.dense_vectors(stored[rows].tolist()) @ vector
    for j, row in outside_vectors.items():
        dense[j] = float(np.asarray(row, dtype=np.float32) @ vector)
    return dense


def _bm25(
    view: ReadView, query: str, texts: Sequence[str], stored: np.ndarray
) -> tuple[np.ndarray, float]:
    bm25 = np.full(len(texts), np.nan)
    rows = np.flatnonzero(stored >= 0)
    lexical = view.lexical_search(query, 1, None, also=stored[rows])  # as a search scores them
    bm25[rows] = lexical.also
    others = np.flatnonzero(stored < 0)
    if len(others):
        bm25[others], _ = view.lexical_score_texts(query, [texts[j] for j in others])
    return bm25, float(lexical.query_max)


__all__ = ["given_recall", "stored_ids"]
