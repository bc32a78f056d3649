"""Ranking metrics with the conventions of ``trec_eval`` / BEIR.

nDCG uses linear gain (``rel / log2(rank + 1)``) and an ideal ranking built from
the qrels; Recall@k is the share of relevant documents found in the top k; MRR@k is
the reciprocal rank of the first relevant document within the top k. Queries
without relevant documents are skipped, as BEIR does. These are a few lines each,
so we keep them here, tested against hand-computed cases, rather than pull in a
metrics package with a compiled or JIT toolchain.

Example:
    >>> run = {"q1": ["d2", "d1"]}
    >>> qrels = {"q1": {"d1": 1}}
    >>> round(ndcg_at_k(run, qrels, 10), 4), recall_at_k(run, qrels, 1), mrr_at_k(run, qrels, 10)
    (0.6309, 0.0, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def _judged(qrels: Qrels) -> dict[str, dict[str, int]]:
    return {q: {d: r for d, r in rels.items() if r > 0} for q, rels in qrels.items()}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ndcg_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean nDCG@k over the queries that have at least one relevant document."""
    scores = []
    for qid, rels in qrels.items():
        positives = {d: r for d, r in rels.items() if r > 0}
        if not positives:
            continue
        ranked = list(run.get(qid, []))[:k]
        dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(positives.values(), reverse=True)[:k]
        idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
        scores.append(dcg / idcg)
    return _mean(scores)


def recall_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean share of relevant documents found in the top k."""
    scores = []
    for qid, positives in _judged(qrels).items():
        if not positives:
            continue
        found = len(set(list(run.get(qid, []))[:k]) & positives.keys())
        scores.append(found / len(positives))
    return _mean(scores)


def mrr_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Mean reciprocal rank of the first relevant document within the top k."""
    scores = []
    for qid, positives in _judged(qrels).items():
        if not positives:
            continue
        rr = 0.0
        for i, doc in enumerate(list(run.get(qid, []))[:k]):
            if doc in positives:
                rr = 1.0 / (i + 1)
                break
        scores.append(rr)
    return _mean(scores)


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """The standard report: nDCG@10, Recall@10, Recall@100, MRR@10."""
    return {
        "ndcg@10": ndcg_at_k(run, qrels, 10),
        "recall@10": recall_at_k(run, qrels, 10),
        "recall@100": recall_at_k(run, qrels, 100),
        "mrr@10": mrr_at_k(run, qrels, 10),
    }


__all__ = ["evaluate", "mrr_at_k", "ndcg_at_k", "recall_at_k"]
