"""Speed measurements on your own index: the code behind ``colrank bench``.

All timings are wall-clock on this machine and are meant to be read as ratios measured
side by side in one run (stored vs re-encoded rerank; colrank vs PyLate batching).

Example:
    >>> report = rerank_vs_reencode(index, ["a question"], n_reencode=1)  # doctest: +SKIP
    >>> report["speedup_p50"]                                              # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from colrank.index import ColrankIndex


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean in milliseconds, and the sample count."""
    arr = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "n": len(arr),
    }


def query_latency(
    index: ColrankIndex,
    queries: Sequence[str],
    candidates: int = 100,
    progress: bool = False,
    **search: Any,
) -> dict[str, Any]:
    """End-to-end ``search`` latency and its per-stage breakdown (after one warm-up query)."""
    k = min(10, candidates)
    index.search(queries[0], k=k, candidates=candidates, **search)
    total, stages = [], {}
    for q in tqdm(queries, desc="Timing searches", unit="query", disable=not progress):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        index.search(q, k=k, candidates=candidates, timings=timings, **search)
        total.append(time.perf_counter() - start)
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds)
    return {"total": percentiles(total), "stages": {k: percentiles(v) for k, v in stages.items()}}


def rerank_vs_reencode(
    index: ColrankIndex, queries: Sequence[str], n_reencode: int = 5, candidates: int = 100
) -> dict[str, Any]:
    """Rerank the dense top-``candidates``: stored token embeddings vs re-encoding them.

    Both paths include the ColBERT query encoding (the stored path with the index's
    engine, the dense stage left out as for any reranker given its candidates) and use
    the same model; the re-encoding path scores with ``pylate.rank.rerank``, as
    rerankers without a token store do on every query. Also reports how far the two
    paths' scores differ.
    """
    from pylate import rank

    model = index.colbert_encoder.model
    core = {"first_stage": "dense", "rerank_fusion": "none"}
    k = min(10, candidates)
    index.search(queries[0], k=k, candidates=candidates, **core)  # warm-up
    stored, cands = [], []
    for q in queries:
        t: dict[str, float] = {}
        index.search(q, k=k, candidates=candidates, timings=t, **core)
        encode: dict[str, float] = {}  # the ColBERT query encoding alone, as a reranker does
        index.encoders.encode_queries([q], dense=False, timings=encode)
        stored.append(sum(encode.values()) + t["token_fetch"] + t["maxsim"])
        cands.append(index.candidate_scores([q], candidates=candidates, first_stage="dense")[0])
    reencode, max_diff, same_top10 = [], 0.0, 0
    for q, cand in list(zip(queries, cands, strict=True))[:n_reencode]:
        texts = [d.text for d in index.get(cand.ids)]
        start = time.perf_counter()
        q_emb = model.encode([q], is_query=True, show_progress_bar=False)
        d_emb = model.encode(texts, is_query=False, batch_size=32, show_progress_bar=False)
        ranked = rank.rerank(
            documents_ids=[cand.ids], queries_embeddings=q_emb, documents_embeddings=[d_emb]
        )[0]
        reencode.append(time.perf_counter() - start)
        theirs = {r["id"]: r["score"] for r in ranked}
        ours = dict(zip(cand.ids, cand.colbert_scores.tolist(), strict=True))
        max_diff = max(max_diff, max(abs(ours[i] - theirs[i]) for i in cand.ids))
        top = [cand.ids[i] for i in np.argsort(-cand.colbert_scores, kind="stable")[:10]]
        same_top10 += int(top == [r["id"] for r in ranked[:10]])
    s, r = percentiles(stored), percentiles(reencode)
    return {
        "candidates": candidates,
        "stored": s,
        "reencode": r,
        "speedup_p50": r["p50_ms"] / s["p50_ms"],
        "max_abs_score_diff": max_diff,
        "identical_top10": f"{same_top10}/{len(reencode)}",
    }


def indexing_throughput(index: ColrankIndex, texts: Sequence[str]) -> dict[str, Any]:
    """Document encoding: colrank's indexing encode vs PyLate's ``encode`` on the same model.

    ``colrank`` is what ``add`` runs (dense vectors *and* ColBERT tokens, through the
    configured engine); PyLate's ``encode`` computes the ColBERT tokens only. Each is
    timed after a warm-up; also reports the largest difference between the two sets of
    token embeddings.
    """
    model = index.colbert_encoder.model
    texts = list(texts)
    index.encoders.encode_documents(texts[:8], progress=False)
    start = time.perf_counter()
    _, ours = index.encoders.encode_documents(texts, progress=False)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = model.encode(texts, is_query=False, batch_size=32, show_progress_bar=False)
    theirs_s = time.perf_counter() - start
    diff = max(float(np.abs(a - np.asarray(b)).max()) for a, b in zip(ours, theirs, strict=True))
    return {
        "documents": len(texts),
        "engine": index.encoders.engine,
        "colrank_docs_per_s": len(texts) / ours_s,
        "pylate_docs_per_s": len(texts) / theirs_s,
        "speedup": theirs_s / ours_s,
        "max_abs_embedding_diff": diff,
        "token_budget": index.config.runtime.token_budget,
    }


__all__ = ["indexing_throughput", "percentiles", "query_latency", "rerank_vs_reencode"]
