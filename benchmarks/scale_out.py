"""Past one machine: the local backend, one PostgreSQL server and a collection spread over
three servers, side by side in one run, at growing sizes.

The synthetic collections and queries of ``scale_server.py`` (384-d clustered dense
vectors, 96-d tokens, Zipf words); the query path without encoding (hybrid recall of
100, token fetch, MaxSim, final ranking with the document lookup). Every server runs on
this machine (127.0.0.1); the spread collection's coordinator and its three shards are
four servers sharing the same two cores, so it shows the mechanism's overhead, not the
gain of more machines. Also measured: ingest docs/s, HNSW recall@100 against exact
search at several ``ef_search``, BM25's top-100 against exhaustive BM25 and its cost
growth, and whether a filtered search fills k.

    python benchmarks/scale_out.py [--sizes 10000 100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import psycopg
from common import write_result
from scale_server import corpus, hnsw_recall, ingest, queries, query_path

from colrank.store.local.backend import LocalBackend
from colrank.store.postgres.backend import PostgresBackend
from colrank.store.postgres.embedded import EmbeddedPostgres

EF_SEARCH = (40, 100, 200, 400)
FILTER = {"shard": 3}  # a tenth of the documents


def vacuum(backend: PostgresBackend, urls: list[str]) -> None:
    """``VACUUM ANALYZE`` the documents and postings where they live (what autovacuum does)."""
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            for table in (backend.tables.docs, backend.tables.terms):
                conn.execute(f"VACUUM ANALYZE {table}")


def bm25_against_exhaustive(
    backend: PostgresBackend, exhaustive: PostgresBackend, qs: list[dict]
) -> dict[str, float]:
    """Top-100 overlap with exhaustive BM25, and the exhaustive stage's p50 for contrast."""
    overlap, exhaustive_ms = [], []
    for q in qs:
        with backend.read() as a:
            got = a.lexical_search(q["text"], 100, None).iids.tolist()
        start = time.perf_counter()
        with exhaustive.read() as b:
            want = b.lexical_search(q["text"], 100, None).iids.tolist()
        exhaustive_ms.append((time.perf_counter() - start) * 1000)
        overlap.append(len(set(got) & set(want)) / max(len(want), 1))
    return {
        "top100_overlap": float(np.mean(overlap)),
        "exhaustive_p50_ms": float(np.percentile(exhaustive_ms, 50)),
    }


def filled(backend: Any, qs: list[dict]) -> float:
    """Share of filtered dense searches that returned a full 100."""
    full = 0
    for q in qs:
        with backend.read() as view:
            full += int(len(view.dense_search(q["vector"], 100, FILTER)[1][0]) == 100)
    return full / len(qs)


def one_size(n: int, one: EmbeddedPostgres, coordinator, shards, count: int) -> dict[str, Any]:
    rows, words = corpus(n)
    qs = queries(rows, words, count)
    name = f"out{n}"
    local = LocalBackend()
    single = PostgresBackend(one.url, name, codec="float16")
    spread = PostgresBackend(coordinator.url, name, codec="float16", shards=[s.url for s in shards])
    for backend in (single, spread):
        backend.drop()
    rates = {
        "local": ingest(local, rows),
        "one server": ingest(single, rows),
        "spread (3 shards)": ingest(spread, rows),
    }
    del rows
    vacuum(single, [one.url])
    vacuum(spread, [s.url for s in shards])
    sides = {"local": local, "one server": single, "spread (3 shards)": spread}
    entry: dict[str, Any] = {
        "documents": n,
        "ingest_docs_per_s": rates,
        "query_ms": {label: query_path(b, qs) for label, b in sides.items()},
        "filtered_fills_100": {label: filled(b, qs) for label, b in sides.items()},
    }
    exact = PostgresBackend(one.url, name, exact=True)
    entry["hnsw_recall@100"] = {}
    for ef in EF_SEARCH:
        tuned = PostgresBackend(one.url, name, ef_search=ef)
        entry["hnsw_recall@100"][str(ef)] = hnsw_recall(tuned, exact, qs)
        tuned.close()
    entry["spread_recall@100"] = hnsw_recall(spread, exact, qs)
    exhaustive = PostgresBackend(one.url, name, bm25_depth=10**9)
    entry["bm25"] = bm25_against_exhaustive(single, exhaustive, qs)
    print(n, {k: v for k, v in entry.items() if k != "query_ms"})
    for label, stages in entry["query_ms"].items():
        print(f"  {label}: " + ", ".join(f"{k} {v['p50_ms']:.2f}" for k, v in stages.items()))
    for backend in (single, spread):
        backend.drop()
    for backend in (single, spread, exact, exhaustive):
        backend.close()
    return entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    servers = [EmbeddedPostgres().start() for _ in range(5)]
    one, coordinator, shards = servers[0], servers[1], servers[2:]
    report: dict[str, Any] = {}
    try:
        for n in args.sizes:
            report[str(n)] = one_size(n, one, coordinator, shards, args.queries)
            write_result("scale_out", {"sizes": report})  # kept as each size ends
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
