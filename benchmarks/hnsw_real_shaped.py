"""HNSW recall@100 on vectors shaped like real embeddings, up to 1M, on PostgreSQL.

Uniform or weakly clustered random vectors are HNSW's worst case. Here the dense
vectors are the offline MiniLM's embeddings of SciFact's 5,183 abstracts, each
replicated with small Gaussian noise (sigma per dimension ``--noise / sqrt(384)``, then
renormalised) until the collection has N vectors; the queries are SciFact's test claims
(their own embeddings). The table has the collection's dense column and index exactly
(``halfvec(384)``, HNSW m 16, ef_construction 64, inner product), loaded with COPY and
indexed after the load (how a bulk load should be done); recall@100 is against exact
search (numpy, float32) at several ``hnsw.ef_search``.

    python benchmarks/hnsw_real_shaped.py [--sizes 10000 100000 1000000] [--queries 100]
        [--graphs 16:64 32:128]   # HNSW m:ef_construction pairs to build and compare
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import psycopg
from common import ROOT, SCIFACT, write_result
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from colrank.store.postgres.embedded import EmbeddedPostgres

EF_SEARCH = (100, 200, 400, 1000)  # below 100 a LIMIT 100 query returns fewer rows


def embeddings(count: int) -> tuple[np.ndarray, np.ndarray]:
    """SciFact corpus and test-query embeddings from the offline MiniLM (cached)."""
    cache = ROOT / "indexes"  # generated, ignored by git
    cache.mkdir(exist_ok=True)
    path = cache / "scifact-minilm-dense.npz"
    if path.is_file():
        data = np.load(path)
        return data["docs"], data["queries"][:count]
    from colrank import ColrankConfig
    from colrank.eval.corpus import load_beir, read_corpus
    from colrank.models.encoders import DenseEncoder

    config = ColrankConfig.offline()
    encoder = DenseEncoder.load(config.models.dense_model, config.runtime)
    _, texts, _ = read_corpus(SCIFACT)
    queries = list(load_beir(SCIFACT).queries.values())
    docs = encoder.encode(texts).astype(np.float32)
    qs = encoder.encode(queries).astype(np.float32)
    np.savez(path, docs=docs, queries=qs)
    return docs, qs[:count]


def replicate(base: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), np.float32)
    out[: len(base)] = base
    sigma = noise / np.sqrt(base.shape[1])
    for start in range(len(base), n, 100_000):
        stop = min(start + 100_000, n)
        picks = base[rng.integers(0, len(base), stop - start)]
        moved = picks + sigma * rng.standard_normal(picks.shape).astype(np.float32)
        out[start:stop] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 100) -> list[set[int]]:
    scores = np.zeros((len(queries), 0), np.float32)
    ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), 200_000):
        block = queries @ vectors[start : start + 200_000].T
        scores = np.concatenate([scores, block], axis=1)
        ids = np.concatenate(
            [ids, np.broadcast_to(np.arange(start, start + block.shape[1]), block.shape)], axis=1
        )
        keep = np.argpartition(-scores, k, axis=1)[:, :k]
        scores = np.take_along_axis(scores, keep, 1)
        ids = np.take_along_axis(ids, keep, 1)
    return [set(row.tolist()) for row in ids]


def one_size(
    url: str, vectors: np.ndarray, queries: np.ndarray, m: int = 16, construction: int = 64
) -> dict[str, Any]:
    n = len(vectors)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("DROP TABLE IF EXISTS shaped")
        conn.execute("CREATE TABLE shaped (iid bigint PRIMARY KEY, dense halfvec(384) NOT NULL)")
        started = time.perf_counter()
        with conn.cursor().copy("COPY shaped (iid, dense) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "halfvec"])
            for i, v in enumerate(vectors):
                cp.write_row((i, HalfVector(v)))
        load_s = time.perf_counter() - started
        conn.execute("SET maintenance_work_mem = '4GB'")
        started = time.perf_counter()
        conn.execute(
            "CREATE INDEX ON shaped USING hnsw (dense halfvec_ip_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(construction)})"
        )
        build_s = time.perf_counter() - started
        want = exact_top(vectors, queries)
        recall, latency = {}, {}
        for ef in EF_SEARCH:
            conn.execute(f"SET hnsw.ef_search = {ef}")
            found, times = [], []
            for q, expected in zip(queries, want, strict=True):
                literal = "[" + ",".join(f"{x:.9g}" for x in q.tolist()) + "]"
                t = time.perf_counter()
                rows = conn.execute(
                    "SELECT iid FROM shaped ORDER BY dense <#> %s::halfvec LIMIT 100", [literal]
                ).fetchall()
                times.append((time.perf_counter() - t) * 1000)
                found.append(len({r[0] for r in rows} & expected) / 100)
            recall[str(ef)] = float(np.mean(found))
            latency[str(ef)] = float(np.percentile(times, 50))
        conn.execute("DROP TABLE shaped")
    entry = {
        "vectors": n,
        "m": m,
        "ef_construction": construction,
        "copy_s": load_s,
        "hnsw_build_s": build_s,
        "recall@100": recall,
        "p50_ms": latency,
    }
    print(entry, flush=True)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--graphs", nargs="+", default=["16:64"], help="m:ef_construction")
    args = parser.parse_args()
    base, queries = embeddings(args.queries)
    report: dict[str, Any] = {"noise": args.noise, "base_vectors": len(base), "sizes": {}}
    with EmbeddedPostgres() as server:
        for n in args.sizes:
            vectors = replicate(base, n, args.noise)
            for graph in args.graphs:
                m, construction = (int(x) for x in graph.split(":"))
                key = str(n) if graph == "16:64" else f"{n} m{m} efc{construction}"
                report["sizes"][key] = one_size(server.url, vectors, queries, m, construction)
                write_result("hnsw_real_shaped", report)


if __name__ == "__main__":
    main()
