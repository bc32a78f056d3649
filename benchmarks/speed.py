"""Speed on SciFact, side by side in one run (the code lives in colrank.eval.bench).

- rerank of the dense top-100: stored token embeddings vs re-encoding the candidates;
- end-to-end search latency by stage, for the core path (dense -> ColBERT) and the default
  (hybrid recall + fusion);
- ColBERT indexing throughput: colrank's token-budget batching vs PyLate's encode.

    python benchmarks/speed.py [--queries 50] [--reencode 8] [--indexing 400]
"""

from __future__ import annotations

import argparse

from common import SCIFACT, scifact_index, write_result

from colrank.eval.bench import indexing_throughput, query_latency, rerank_vs_reencode
from colrank.eval.corpus import load_beir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--reencode", type=int, default=8)
    parser.add_argument("--indexing", type=int, default=400)
    args = parser.parse_args()
    index, _ = scifact_index()
    data = load_beir(SCIFACT, "test")
    queries = [data.queries[q] for q in sorted(data.queries)][: args.queries]
    rerank = rerank_vs_reencode(index, queries, args.reencode)
    core = query_latency(index, queries, first_stage="dense", rerank_fusion="none")
    default = query_latency(index, queries)
    sample = [d.text for d in index.get(index.ids()[: args.indexing])]
    indexing = indexing_throughput(index, sample)
    print(f"rerank speed-up (p50): {rerank['speedup_p50']:.0f}x")
    print(
        f"core search p50 {core['total']['p50_ms']:.1f} ms; default p50 {default['total']['p50_ms']:.1f} ms"
    )
    print(
        f"indexing: colrank {indexing['colrank_docs_per_s']:.1f} docs/s, PyLate {indexing['pylate_docs_per_s']:.1f} docs/s"
    )
    write_result(
        "speed",
        {
            "model": index.config.models.colbert_model,
            "token_codec": index.config.token_store.codec,
            "rerank": rerank,
            "core_search": core,
            "default_search": default,
            "indexing": indexing,
        },
    )


if __name__ == "__main__":
    main()
