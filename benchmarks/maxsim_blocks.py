"""Token fetch + MaxSim over 100 candidates: decode all rows first vs block by block.

Side by side in one run, on SciFact test queries and the offline index's float16 tokens:
*decode all* gathers the candidates' rows, casts them all to float32, then multiplies
(``gather_flat`` + ``maxsim_flat``, the path before block decoding); *blocks of N*
gathers the encoded rows and lets ``maxsim_flat`` decode and multiply N rows at a time
(what ``search`` does, with ``FLAT_BLOCK_ROWS``). Variants are interleaved per query so
that machine drift hits them all alike. Query encoding is done once, outside the timing.

    python benchmarks/maxsim_blocks.py [--queries 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import SCIFACT, percentiles, scifact_index, write_result

from colrank.eval.corpus import load_beir
from colrank.rerank.maxsim import FLAT_BLOCK_ROWS, maxsim_flat

BLOCKS = (256, 512, 1024, 2048, 4096, 8192)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    index, _ = scifact_index()
    store = index._stores()[1]
    data = load_beir(SCIFACT, "test")
    texts = [data.queries[q] for q in sorted(data.queries)][: args.queries]
    encoded = index.colbert_encoder.encode_queries(texts)
    cases = []
    for text, q_tokens in zip(texts, encoded, strict=True):
        hits = index.recall(text, k=100, first_stage="dense")
        cases.append((torch.from_numpy(q_tokens), index._iids_of([h.id for h in hits])))

    def decode_all(q: torch.Tensor, iids: list[int]) -> np.ndarray:
        return maxsim_flat(q, *store.gather_flat(iids))

    def blocks(n: int):
        def run(q: torch.Tensor, iids: list[int]) -> np.ndarray:
            codes, lengths = store.gather_codes(iids)
            return maxsim_flat(q, codes, lengths, decode=store.codec.decode, block_rows=n)

        return run

    variants = {"decode all": decode_all, **{f"blocks of {n}": blocks(n) for n in BLOCKS}}
    times: dict[str, list[float]] = {name: [] for name in variants}
    max_diff = 0.0
    tokens = []
    for q, iids in cases:
        reference = decode_all(q, iids)  # also warms the page cache for these rows
        tokens.append(int(store.gather_codes(iids)[1].sum()))
        for _ in range(args.rounds):
            for name, fn in variants.items():
                start = time.perf_counter()
                scores = fn(q, iids)
                times[name].append(time.perf_counter() - start)
                max_diff = max(max_diff, float(np.abs(scores - reference).max()))
    result = {name: percentiles(t) for name, t in times.items()}
    for name, p in result.items():
        print(f"{name:<16} p50 {p['p50_ms']:.2f} ms  p95 {p['p95_ms']:.2f} ms")
    write_result(
        "maxsim_blocks",
        {
            "candidates": 100,
            "token_codec": store.codec.name,
            "token_dim": store.dim,
            "mean_candidate_tokens": float(np.mean(tokens)),
            "default_block_rows": FLAT_BLOCK_ROWS,
            "max_abs_score_diff": max_diff,
            "variants": result,
        },
    )


if __name__ == "__main__":
    main()
