"""Scale: build and query synthetic indexes of 10k, 100k and 1M documents.

Random unit vectors stand in for embeddings (no model runs): 384-dim dense vectors in a
FAISS IVF index, and 96-dim float16 token embeddings (the size of answerai-colbert-small)
with MS MARCO-like lengths (mean ~70 tokens), streamed to a memory-mapped token file in
chunks so the build never holds the corpus in RAM. A query is timed from FAISS search
through token fetch and MaxSim over 100 candidates (query encoding excluded: it does not
depend on corpus size).

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--workdir indexes/scale]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from common import ROOT, percentiles, write_result

from colrank.config import DenseIndexConfig
from colrank.rerank.maxsim import maxsim_flat
from colrank.store.codecs import make_codec
from colrank.store.local.dense_index import DenseIndex
from colrank.store.local.token_store import (
    CODEC_FILE,
    IIDS_FILE,
    LENGTHS_FILE,
    TOKENS_FILE,
    TokenStore,
)

DENSE_DIM, TOKEN_DIM, QUERY_TOKENS, CHUNK = 384, 96, 32, 50_000


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def rss_gib() -> float:
    return psutil.Process().memory_info().rss / 2**30


def build(n: int, workdir: Path, rng: np.random.Generator) -> tuple[DenseIndex, TokenStore, dict]:
    start = time.perf_counter()
    nlist = min(1024, max(16, int(4 * math.sqrt(n))))
    dense = DenseIndex(DENSE_DIM, DenseIndexConfig(kind="ivf", ivf_nlist=nlist, ivf_nprobe=32))
    for lo in range(0, n, CHUNK):  # the first chunk also trains the IVF
        hi = min(n, lo + CHUNK)
        dense.add(np.arange(lo, hi), unit(rng, hi - lo, DENSE_DIM))
    dense_s = time.perf_counter() - start

    lengths = np.clip(rng.lognormal(np.log(60), 0.5, n), 8, 300).astype(np.int32)
    codec = make_codec("float16", TOKEN_DIM)
    workdir.mkdir(parents=True, exist_ok=True)
    tokens = np.lib.format.open_memmap(
        workdir / TOKENS_FILE, mode="w+", dtype=np.uint8, shape=(int(lengths.sum()), codec.width)
    )
    cursor = 0
    for lo in range(0, n, CHUNK):
        count = int(lengths[lo : lo + CHUNK].sum())
        tokens[cursor : cursor + count] = codec.encode(unit(rng, count, TOKEN_DIM))
        cursor += count
    tokens.flush()
    del tokens
    np.save(workdir / IIDS_FILE, np.arange(n, dtype=np.int64), allow_pickle=False)
    np.save(workdir / LENGTHS_FILE, lengths, allow_pickle=False)
    (workdir / CODEC_FILE).write_text(json.dumps({"codec": "float16", "dim": TOKEN_DIM}))
    store = TokenStore.load(workdir, mmap=True)
    info = {
        "documents": n,
        "ivf_lists": nlist,
        "tokens": int(lengths.sum()),
        "mean_tokens_per_doc": float(lengths.mean()),
        "token_file_gib": (workdir / TOKENS_FILE).stat().st_size / 2**30,
        "dense_build_s": dense_s,
        "build_s": time.perf_counter() - start,
    }
    return dense, store, info


def time_queries(
    dense: DenseIndex, store: TokenStore, rng: np.random.Generator, n: int = 100
) -> dict:
    total, faiss_t, fetch_t, maxsim_t = [], [], [], []
    for i in range(n + 5):
        q_dense = unit(rng, 1, DENSE_DIM)
        q_tokens = torch.from_numpy(unit(rng, QUERY_TOKENS, TOKEN_DIM))
        t0 = time.perf_counter()
        _, iids = dense.search(q_dense, 100)
        t1 = time.perf_counter()
        codes, lengths = store.gather_codes(iids[0][iids[0] >= 0].tolist())
        t2 = time.perf_counter()
        maxsim_flat(q_tokens, codes, lengths, decode=store.codec.decode)
        t3 = time.perf_counter()
        if i >= 5:  # warm-up
            total.append(t3 - t0)
            faiss_t.append(t1 - t0)
            fetch_t.append(t2 - t1)
            maxsim_t.append(t3 - t2)
    return {
        "total": percentiles(total),
        "faiss": percentiles(faiss_t),
        "token_fetch": percentiles(fetch_t),
        "maxsim": percentiles(maxsim_t),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workdir", default=str(ROOT / "indexes" / "scale"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        workdir = Path(args.workdir) / str(n)
        shutil.rmtree(workdir, ignore_errors=True)
        dense, store, info = build(n, workdir, rng)
        info["rss_gib_after_build"] = rss_gib()
        info["query"] = time_queries(dense, store, rng)
        info["rss_gib_after_queries"] = rss_gib()
        rows.append(info)
        print(
            f"{n:>9,} docs: build {info['build_s']:.0f} s, tokens {info['token_file_gib']:.1f} GiB on disk, "
            f"RSS {info['rss_gib_after_queries']:.1f} GiB, query p50 {info['query']['total']['p50_ms']:.1f} ms"
        )
        del dense, store
        shutil.rmtree(workdir, ignore_errors=True)
    write_result(
        "scale",
        {
            "dense_dim": DENSE_DIM,
            "token_dim": TOKEN_DIM,
            "query_tokens": QUERY_TOKENS,
            "candidates": 100,
            "sizes": rows,
        },
    )


if __name__ == "__main__":
    main()
