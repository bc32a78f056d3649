"""Evaluate an index on a BEIR split: dense-only and dense → ColBERT at several depths.

One dense search per query at the largest depth, one MaxSim over those candidates;
each "rerank@c" run reorders the first ``c`` dense candidates by ColBERT and keeps
the rest of the dense order behind them (so Recall@100 of rerank@10 is the dense
Recall@100 with the top 10 reordered).

Example:
    >>> from colrank.corpus import load_beir                      # doctest: +SKIP
    >>> report = evaluate_index(index, load_beir("scifact"))       # doctest: +SKIP
    >>> report["dense"]["ndcg@10"], report["rerank@100"]["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from colrank.corpus import BeirDataset
from colrank.engine import ColrankIndex
from colrank.metrics import evaluate

DEFAULT_DEPTHS = (10, 30, 100, 300)


def rerank_runs(
    index: ColrankIndex,
    queries: dict[str, str],
    depths: Sequence[int] = DEFAULT_DEPTHS,
    *,
    batch_size: int = 32,
    progress: bool = True,
    ignore_identical_ids: bool = True,
) -> dict[str, dict[str, list[str]]]:
    """Rankings per query for ``dense`` and each ``rerank@c``.

    ``ignore_identical_ids`` drops a document whose id equals the query id, as BEIR's
    evaluation does (some datasets share id spaces between queries and documents).
    """
    depths = sorted(set(depths))
    deepest = max(max(depths), 100)
    runs: dict[str, dict[str, list[str]]] = {"dense": {}}
    runs.update({f"rerank@{c}": {} for c in depths})
    qids = list(queries)
    with tqdm(total=len(qids), desc="Evaluating", disable=not progress, unit="query") as bar:
        for start in range(0, len(qids), batch_size):
            chunk = qids[start : start + batch_size]
            scored = index.candidate_scores([queries[q] for q in chunk], candidates=deepest)
            for qid, cand in zip(chunk, scored, strict=True):
                ids, colbert = cand.ids, cand.colbert_scores
                if ignore_identical_ids and qid in ids:
                    keep = [i for i, d in enumerate(ids) if d != qid]
                    ids, colbert = [ids[i] for i in keep], colbert[keep]
                runs["dense"][qid] = ids
                for c in depths:
                    head = np.argsort(-colbert[:c], kind="stable")
                    runs[f"rerank@{c}"][qid] = [ids[i] for i in head] + ids[c:]
            bar.update(len(chunk))
    return runs


def evaluate_index(
    index: ColrankIndex,
    dataset: BeirDataset,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    *,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics (nDCG@10, Recall@10/100, MRR@10) for every run of :func:`rerank_runs`."""
    runs = rerank_runs(index, dataset.queries, depths, progress=progress)
    return {name: evaluate(run, dataset.qrels) for name, run in runs.items()}


__all__ = ["DEFAULT_DEPTHS", "evaluate_index", "rerank_runs"]
