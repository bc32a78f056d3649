"""Evaluate an index on a BEIR split: first stages, ColBERT reranking, and fusions.

Per first stage (``dense``, ``bm25``, ``hybrid``) the candidates are retrieved once at
the largest depth and scored once by ColBERT; every run is then a reordering:

- ``default``: what :meth:`ColrankIndex.search` returns with the index's own settings
  and 100 candidates (the default search a user gets, measured by name);
- ``<stage>``: the first-stage order;
- ``<stage>>colbert@c``: the first ``c`` candidates reordered by ColBERT, the rest
  kept in first-stage order behind them (so Recall@100 of ``@10`` is the first stage's
  with its top 10 reordered);
- ``<stage>>interp(w)@c``: ``w * minmax(ColBERT) + (1-w) * minmax(first stage)``;
- ``<stage>>rrf@c``: reciprocal rank fusion of the ColBERT and first-stage ranks.

Example:
    >>> from colrank.eval.corpus import load_beir                      # doctest: +SKIP
    >>> report = evaluate_index(index, load_beir("scifact"))       # doctest: +SKIP
    >>> report["dense"]["ndcg@10"], report["dense>colbert@100"]["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from colrank.eval.corpus import BeirDataset
from colrank.eval.metrics import evaluate
from colrank.index import ColrankIndex
from colrank.results import CandidateScores
from colrank.scoring.fusion import interpolate, rrf

DEFAULT_DEPTHS = (10, 30, 100, 300)
FUSION_DEPTH = 100


def _without(cand: CandidateScores, qid: str) -> CandidateScores:
    """Drop a document whose id equals the query id (BEIR's evaluation does)."""
    if qid not in cand.ids:
        return cand
    keep = [i for i, d in enumerate(cand.ids) if d != qid]
    return CandidateScores(
        [cand.ids[i] for i in keep],
        cand.dense_scores[keep],
        cand.colbert_scores[keep],
        cand.bm25_scores[keep],
        cand.first_stage_scores[keep],
        cand.final_scores[keep],
    )


def _reorder(ids: list[str], head_scores: np.ndarray) -> list[str]:
    c = len(head_scores)
    head = np.argsort(-head_scores, kind="stable")
    return [ids[i] for i in head] + ids[c:]


def _runs_for(
    cand: CandidateScores,
    stage: str,
    depths: Sequence[int],
    weights: Sequence[float],
    with_rrf: bool,
) -> dict[str, list[str]]:
    ids, colbert, first = cand.ids, cand.colbert_scores, cand.first_stage_scores
    runs = {stage: list(ids)}
    for c in depths:
        runs[f"{stage}>colbert@{c}"] = _reorder(ids, colbert[:c])
    c = FUSION_DEPTH
    for w in weights:
        runs[f"{stage}>interp({w:g})@{c}"] = _reorder(ids, interpolate(colbert[:c], first[:c], w))
    if with_rrf:
        runs[f"{stage}>rrf@{c}"] = _reorder(ids, rrf([colbert[:c], first[:c]]))
    return runs


def rerank_runs(
    index: ColrankIndex,
    queries: dict[str, str],
    depths: Sequence[int] = DEFAULT_DEPTHS,
    *,
    first_stages: Sequence[str] = ("dense",),
    weights: Sequence[float] = (),
    with_rrf: bool = False,
    batch_size: int = 32,
    progress: bool = True,
    ignore_identical_ids: bool = True,
) -> dict[str, dict[str, list[str]]]:
    """Rankings per query for every run named in the module docstring.

    ``ignore_identical_ids`` drops a document whose id equals the query id, as BEIR's
    evaluation does (some datasets share id spaces between queries and documents).
    """
    depths = sorted(set(depths))
    deepest = max(max(depths), FUSION_DEPTH)
    runs: dict[str, dict[str, list[str]]] = {}
    qids = list(queries)
    total = len(qids) * len(first_stages)
    with tqdm(total=total + len(qids), desc="Evaluating", disable=not progress) as bar:
        for start in range(0, len(qids), batch_size):
            chunk = qids[start : start + batch_size]
            hits = index.search_many([queries[q] for q in chunk], FUSION_DEPTH, FUSION_DEPTH)
            for qid, found in zip(chunk, hits, strict=True):
                ranking = [h.id for h in found]
                runs.setdefault("default", {})[qid] = (
                    [d for d in ranking if d != qid] if ignore_identical_ids else ranking
                )
            bar.update(len(chunk))
        for stage in first_stages:
            for start in range(0, len(qids), batch_size):
                chunk = qids[start : start + batch_size]
                scored = index.candidate_scores(
                    [queries[q] for q in chunk], candidates=deepest, first_stage=stage
                )
                for qid, cand in zip(chunk, scored, strict=True):
                    if ignore_identical_ids:
                        cand = _without(cand, qid)
                    for name, ranking in _runs_for(cand, stage, depths, weights, with_rrf).items():
                        runs.setdefault(name, {})[qid] = ranking
                bar.update(len(chunk))
    return runs


def evaluate_index(
    index: ColrankIndex,
    dataset: BeirDataset,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    *,
    first_stages: Sequence[str] = ("dense",),
    weights: Sequence[float] = (),
    with_rrf: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics (nDCG@10, Recall@10/100, MRR@10) for every run of :func:`rerank_runs`."""
    runs = rerank_runs(
        index,
        dataset.queries,
        depths,
        first_stages=first_stages,
        weights=weights,
        with_rrf=with_rrf,
        progress=progress,
    )
    return {name: evaluate(run, dataset.qrels) for name, run in runs.items()}


__all__ = ["DEFAULT_DEPTHS", "evaluate_index", "rerank_runs"]
