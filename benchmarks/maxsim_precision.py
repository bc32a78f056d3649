"""MaxSim in bfloat16 vs float32, over tokens stored in float16 or bfloat16.

On CPUs with native bfloat16 products (AVX512-BF16, AMX, Arm BF16) ``maxsim_precision``
``auto`` multiplies the decoded token blocks in bfloat16. This evaluates both precisions
on the saved offline indexes of SciFact test and MS MARCO DL19 (queries through the
default engine), stored as float16 and as bfloat16 (the float16 index recoded with
``recode_tokens``): nDCG@10 of the default search and of dense -> ColBERT, the share of
queries whose top-10 equals float16 + float32's, and the token fetch and MaxSim p50.
Rules fixed before the runs: ``auto`` may pick bfloat16 products, and ``bfloat16`` may
become the default token codec, only if every nDCG@10 stays within 0.3 points of
float16 storage multiplied in float32.

    python benchmarks/maxsim_precision.py
"""

from __future__ import annotations

import logging
import os

from common import ROOT, recoded_index, write_result

from colrank.eval.bench import query_latency
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")


def run(corpus: str, codec: str, precision: str) -> tuple[dict, dict]:
    os.environ["COLRANK_MAXSIM"] = precision
    index = recoded_index(ROOT / "indexes" / f"{corpus}-offline", codec)
    data = load_beir(DATA / corpus, "test")
    report = evaluate_index(index, data, (100,), first_stages=("dense",))
    queries = list(data.queries.values())
    tops = {q: [h.id for h in index.search(text, k=10)] for q, text in data.queries.items()}
    speed = query_latency(index, queries[:50], 100, first_stage="dense", rerank_fusion="none")
    return {
        "default_ndcg@10": report["default"]["ndcg@10"],
        "colbert_ndcg@10": report["dense>colbert@100"]["ndcg@10"],
        "maxsim_p50_ms": speed["stages"]["maxsim"]["p50_ms"],
        "token_fetch_p50_ms": speed["stages"]["token_fetch"]["p50_ms"],
    }, tops


def main() -> None:
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)
    variants = [("float16", "float32"), ("float16", "bfloat16")]
    variants += [("bfloat16", "float32"), ("bfloat16", "bfloat16")]
    runs: dict[str, dict] = {}
    for corpus in CORPORA:
        results = {v: run(corpus, *v) for v in variants}
        _, exact_tops = results[variants[0]]
        runs[corpus] = {}
        for (codec, precision), (row, tops) in results.items():
            same = sum(exact_tops[q] == tops[q] for q in exact_tops) / len(exact_tops)
            runs[corpus][f"{codec}/{precision}"] = {**row, "identical_top10_share": same}
        print(corpus, runs[corpus], flush=True)
    base = "float16/float32"
    keys = ("default_ndcg@10", "colbert_ndcg@10")
    gaps = {
        name: 100 * max(abs(runs[c][name][k] - runs[c][base][k]) for c in CORPORA for k in keys)
        for name in runs[CORPORA[0]]
        if name != base
    }
    verdict = {"largest_gap_points": gaps, "within_0.3": {n: g <= 0.3 for n, g in gaps.items()}}
    print(verdict)
    write_result("maxsim_precision", {"runs": runs, "verdict": verdict})


if __name__ == "__main__":
    main()
