"""Storage per token vs ranking quality for the token-store options, on SciFact test.

Each variant starts from the saved float16 index and is recoded with
``ColrankIndex.recode_tokens`` (no re-encoding; pooling uses PyLate's hierarchical pooling
on the stored vectors). Quality is dense top-100 -> ColBERT alone, to isolate storage.
Bytes per token are counted per *original* token, so pooling's savings show. (The opq<M>
codec is left out: FAISS's OPQ training took over 8 minutes per variant on this CPU.)

    python benchmarks/storage.py
"""

from __future__ import annotations

import time

from common import SCIFACT, SCIFACT_INDEX, percentiles, write_result

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

VARIANTS = [
    ("float32", 1),
    ("float16", 1),
    ("int8", 1),
    ("pq64", 1),
    ("pq32", 1),
    ("float16", 2),
    ("float16", 3),
    ("int8", 2),
    ("pq32", 2),
]


def main() -> None:
    data = load_beir(SCIFACT, "test")
    queries = [data.queries[q] for q in sorted(data.queries)][:50]
    rows = []
    original_tokens = None
    for codec, pool in VARIANTS:
        index = ColrankIndex.load(SCIFACT_INDEX)
        original_tokens = original_tokens or index.stats()["tokens"]
        start = time.perf_counter()
        if codec != "float16" or pool != 1:
            index.recode_tokens(codec, pool_factor=pool, progress=False)
        recode_s = time.perf_counter() - start
        stats = index.stats()
        report = evaluate_index(index, data, (100,), progress=False)
        lat = []
        for q in queries:
            t: dict[str, float] = {}
            index.search(
                q, k=10, candidates=100, first_stage="dense", rerank_fusion="none", timings=t
            )
            lat.append(t["token_fetch"] + t["maxsim"])
        row = {
            "codec": codec,
            "pool_factor": pool,
            "stored_tokens": stats["tokens"],
            "bytes_per_stored_token": stats["bytes_per_token"],
            "bytes_per_original_token": stats["token_bytes"] / original_tokens,
            "store_mib": stats["token_bytes"] / 2**20,
            "ndcg@10": report["dense>colbert@100"]["ndcg@10"],
            "recall@10": report["dense>colbert@100"]["recall@10"],
            "fetch_maxsim": percentiles(lat),
            "recode_seconds": recode_s,
        }
        rows.append(row)
        print(
            f"{codec:>8} pool{pool}: {row['bytes_per_original_token']:7.1f} B/token  "
            f"nDCG@10 {row['ndcg@10']:.4f}  fetch+maxsim p50 {row['fetch_maxsim']['p50_ms']:.1f} ms"
        )
    write_result(
        "storage",
        {"dataset": "BEIR SciFact test", "original_tokens": original_tokens, "variants": rows},
    )


if __name__ == "__main__":
    main()
