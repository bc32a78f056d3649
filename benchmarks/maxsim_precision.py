"""MaxSim in bfloat16 vs float32 over the stored tokens: same rankings? how much faster?

On CPUs with native bfloat16 products (AVX512-BF16, AMX, Arm BF16) ``maxsim_precision``
``auto`` multiplies the decoded token blocks in bfloat16. This evaluates both precisions
on the saved offline indexes of SciFact test and MS MARCO DL19 (queries through the
default engine): nDCG@10 of the default search and of dense -> ColBERT, the share of
queries whose top-10 is identical, and the MaxSim stage's p50. Rule fixed before the
run: ``auto`` may pick bfloat16 only if every nDCG@10 stays within 0.3 points.

    python benchmarks/maxsim_precision.py
"""

from __future__ import annotations

import logging
import os

from common import ROOT, write_result

from colrank import ColrankIndex
from colrank.eval.bench import query_latency
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")


def run(corpus: str, precision: str) -> tuple[dict, dict]:
    os.environ["COLRANK_MAXSIM"] = precision
    index = ColrankIndex.load(ROOT / "indexes" / f"{corpus}-offline")
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
    runs: dict[str, dict] = {}
    for corpus in CORPORA:
        exact, exact_tops = run(corpus, "float32")
        low, low_tops = run(corpus, "bfloat16")
        same = sum(exact_tops[q] == low_tops[q] for q in exact_tops) / len(exact_tops)
        runs[corpus] = {"float32": exact, "bfloat16": low, "identical_top10_share": same}
        print(corpus, runs[corpus], flush=True)
    gaps = [
        abs(runs[c]["bfloat16"][k] - runs[c]["float32"][k])
        for c in CORPORA
        for k in ("default_ndcg@10", "colbert_ndcg@10")
    ]
    verdict = {"largest_gap_points": 100 * max(gaps), "within_0.3": max(gaps) <= 0.003}
    print(verdict)
    write_result("maxsim_precision", {"runs": runs, "verdict": verdict})


if __name__ == "__main__":
    main()
