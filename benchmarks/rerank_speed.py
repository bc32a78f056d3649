"""Reranking 100 candidates per query: stored token embeddings vs re-encoding the candidates.

The re-encoding path is what LlamaIndex ``ColbertRerank`` and RAGatouille ``rerank`` do on
every query; here it uses the *same* PyLate model object and PyLate's own
``rank.rerank``, so both paths give the same scores (checked below). Both timings include
the ColBERT query encoding.

    python benchmarks/rerank_speed.py [--queries 40] [--reencode-queries 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import SCIFACT, percentiles, scifact_index, write_result
from pylate import rank

from colrank.corpus import load_beir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=40, help="queries timed for colrank")
    parser.add_argument(
        "--reencode-queries", type=int, default=8, help="queries timed for re-encoding"
    )
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args()

    index, _ = scifact_index()
    data = load_beir(SCIFACT, "test")
    queries = [data.queries[q] for q in sorted(data.queries)][: args.queries]
    model = index.colbert_encoder.model
    # The core path (dense recall -> ColBERT); hybrid recall adds BM25 (timed below).
    core = {"first_stage": "dense", "rerank_fusion": "none"}
    index.search(queries[0], k=10, candidates=args.candidates, **core)  # warm-up
    index.search(queries[0], k=10, candidates=args.candidates)  # builds BM25 once

    stored, stages, full, hybrid = [], {}, [], []
    candidate_lists = []
    for q in queries:
        start = time.perf_counter()
        index.search(q, k=10, candidates=args.candidates, **core)
        full.append(time.perf_counter() - start)
        t = index.last_timings
        stored.append(t["colbert_encode"] + t["token_fetch"] + t["maxsim"])
        for stage, seconds in t.items():
            stages.setdefault(stage, []).append(seconds)
        candidate_lists.append(
            index.candidate_scores([q], candidates=args.candidates, first_stage="dense")[0]
        )
        start = time.perf_counter()
        index.search(q, k=10, candidates=args.candidates)  # the default: hybrid + fusion
        hybrid.append(time.perf_counter() - start)

    reencode, max_diff, same_top10 = [], 0.0, 0
    for q, cand in zip(queries[: args.reencode_queries], candidate_lists, strict=False):
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
        top_ours = [cand.ids[i] for i in np.argsort(-cand.colbert_scores, kind="stable")[:10]]
        same_top10 += int(top_ours == [r["id"] for r in ranked[:10]])

    s, r = percentiles(stored), percentiles(reencode)
    speedup = r["p50_ms"] / s["p50_ms"]
    print(f"stored tokens   p50 {s['p50_ms']:.1f} ms  p95 {s['p95_ms']:.1f} ms")
    print(f"re-encoding     p50 {r['p50_ms']:.1f} ms  p95 {r['p95_ms']:.1f} ms")
    print(
        f"speed-up (p50)  {speedup:.0f}x   max |score diff| {max_diff:.4f}   identical top-10: {same_top10}/{len(reencode)}"
    )
    write_result(
        "rerank_speed",
        {
            "candidates": args.candidates,
            "model": index.config.models.colbert_model,
            "token_store_dtype": index.config.token_store.dtype,
            "stored": s,
            "reencode": r,
            "speedup_p50": speedup,
            "max_abs_score_diff": max_diff,
            "identical_top10": f"{same_top10}/{len(reencode)}",
            "end_to_end_search": percentiles(full),
            "end_to_end_default_search": percentiles(hybrid),
            "stages": {k: percentiles(v) for k, v in stages.items()},
            "torch_threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
