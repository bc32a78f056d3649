"""Past one machine: the local backend, one PostgreSQL server and a collection spread over
three servers, side by side in one run, at 10k, 100k and 1M documents.

Synthetic collections, as ``scale_server.py``'s (384-d clustered dense vectors, 96-d
tokens, 60-140 per document, 60 Zipf words per document for BM25), generated chunk by
chunk so that 1M documents (100M tokens) never sit in memory at once; tokens stored
``int8`` everywhere (the server's default codec). For each size the three layouts are
built one after the other with the same documents, timed on the same queries, and
dropped (one layout on disk at a time). The servers load with
:meth:`PostgresBackend.bulk_load` (indexes built once at the end); adding to a built
collection is timed too. The query path excludes encoding: hybrid recall of 100, token
fetch, MaxSim (one PyTorch thread), final ranking with the document lookup. Each layout is timed right after
its load and ``VACUUM ANALYZE`` (*cold*), and again after ``pg_prewarm`` has read its
documents, token and index pages into the OS cache (*warm*: a collection in service,
as the local backend holds everything in RAM). Also measured: HNSW recall@100 against
exact search (numpy over the stored half-precision vectors) at several ``ef_search``
and at the default (which follows the size), BM25's top-100 against exhaustive BM25,
and whether a filtered search fills k. Every server runs on this machine (127.0.0.1):
the spread collection's coordinator and its three shards share the same two cores, so it
shows the mechanism's cost, not the gain of more machines.

    python benchmarks/scale_out.py [--sizes 10000 100000 1000000] [--queries 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import torch
from common import write_result
from scale_server import DENSE, STOP, TOKENS, VOCAB, query_path

from colrank.store.base import DocumentRows, WriteBatch
from colrank.store.local.backend import LocalBackend
from colrank.store.postgres.backend import PostgresBackend
from colrank.store.postgres.embedded import EmbeddedPostgres

EF_SEARCH = (100, 200, 400, 1000)
FILTER = {"shard": 3}  # a tenth of the documents
STEP = 5000  # documents per write
SIDES = ("local", "one server", "spread (3 shards)")
SERVER_SETTINGS = ("max_wal_size = '16GB'", "checkpoint_timeout = '30min'")


# ------------------------------------------------------------------- the data
def chunk(start: int, size: int, *, tokens: bool, seed: int = 0) -> tuple[Any, Any, Any]:
    """Documents ``start .. start + size`` (vectors, words, rows with tokens if asked for).

    The same whenever they are made: each chunk has its own seed.
    """
    centres = np.random.default_rng(seed).standard_normal((200, DENSE)).astype(np.float32)
    rng = np.random.default_rng([seed, start])
    points = centres[rng.integers(0, 200, size)] + 0.6 * rng.standard_normal(
        (size, DENSE), dtype=np.float32
    )
    vectors = points / np.linalg.norm(points, axis=1, keepdims=True)
    words = np.zeros((size, 0), np.int64)
    while words.size < size * 60:  # about a quarter of the draws fall in the kept ranks
        draws = rng.zipf(1.1, size=size * 60 * 8)
        kept = draws[(draws > STOP) & (draws <= STOP + VOCAB)]
        words = np.concatenate([words.ravel(), kept])[: size * 60].reshape(size, -1)
    if not tokens:
        return vectors, words, None
    texts = [" ".join(f"w{w}" for w in row) for row in words]
    lengths = rng.integers(60, 141, size)
    flat = rng.standard_normal((int(lengths.sum()), TOKENS), dtype=np.float32)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    made = np.split(flat, np.cumsum(lengths)[:-1])
    ids = [f"d{i}" for i in range(start, start + size)]
    metas = [{"shard": i % 10, "n": i} for i in range(start, start + size)]
    return vectors, words, DocumentRows(ids, texts, metas, vectors, made)


def chunks(n: int, first: int = 0) -> Iterator[DocumentRows]:
    for start in range(first, first + n, STEP):
        yield chunk(start, min(STEP, first + n - start), tokens=True)[2]


def vectors_and_queries(n: int, count: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Every dense vector (for exact search) and ``count`` queries near chosen documents."""
    rng = np.random.default_rng(1)
    chosen = set(rng.choice(n, count, replace=False).tolist())
    vectors, qs = [], []
    for start in range(0, n, STEP):
        part, words, _ = chunk(start, min(STEP, n - start), tokens=False)
        vectors.append(part)
        for i in sorted(c - start for c in chosen if start <= c < start + len(part)):
            v = part[i] + 0.05 * rng.standard_normal(DENSE).astype(np.float32)
            q = rng.standard_normal((32, TOKENS)).astype(np.float32)
            qs.append(
                {
                    "text": " ".join(f"w{w}" for w in words[i][:4]),
                    "vector": (v / np.linalg.norm(v)).astype(np.float32),
                    "tokens": q / np.linalg.norm(q, axis=1, keepdims=True),
                }
            )
    return np.concatenate(vectors), qs


# ------------------------------------------------------------------- measures
def load(backend: Any, n: int) -> dict[str, float]:
    """Write ``n`` documents (a bulk load on a server); docs/s and the index build's time.

    Only the writes are timed, not the making of the synthetic documents.
    """
    spent = 0.0

    def write_all() -> None:
        nonlocal spent
        for rows in chunks(n):
            started = time.perf_counter()
            backend.write(WriteBatch(upserts=rows), dense_model="s", colbert_model="s")
            spent += time.perf_counter() - started

    if isinstance(backend, LocalBackend):
        write_all()
        return {"docs_per_s": n / spent}
    with backend.bulk_load(maintenance_work_mem="4GB"):
        write_all()
        built = time.perf_counter()
    build = time.perf_counter() - built
    return {"docs_per_s": n / (spent + build), "writes_s": spent, "index_build_s": build}


def adding(backend: Any, n: int, count: int = 2000) -> float:
    """docs/s of ordinary writes (1000 a batch) into the built collection of ``n``."""
    spent = 0.0
    for start in range(n, n + count, 1000):
        rows = chunk(start, 1000, tokens=True)[2]
        started = time.perf_counter()
        backend.write(WriteBatch(upserts=rows), dense_model="s", colbert_model="s")
        spent += time.perf_counter() - started
    return count / spent


def where_tables_live(backend: PostgresBackend, one: str, shards: list[str]) -> list[str]:
    return shards if backend.manifest() and backend.manifest().get("shards") else [one]


def vacuum(backend: PostgresBackend, urls: list[str]) -> None:
    """``VACUUM ANALYZE`` the documents and postings where they live (what autovacuum does)."""
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            for table in (backend.tables.docs, backend.tables.terms):
                conn.execute(f"VACUUM ANALYZE {table}")


def prewarm(backend: PostgresBackend, urls: list[str]) -> None:
    """Read the documents, their tokens (TOAST), HNSW and BM25's index into the OS cache."""
    t = backend.tables
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            conn.execute(
                "SELECT pg_prewarm(r, 'read') FROM (SELECT %s::regclass AS r UNION ALL "
                "SELECT reltoastrelid::regclass FROM pg_class WHERE oid = %s::regclass "
                "UNION ALL SELECT indexrelid::regclass FROM pg_index WHERE indrelid = "
                "%s::regclass UNION ALL SELECT %s::regclass) AS x",
                [t.docs, t.docs, t.docs, t.impacts],
            )


def recall(backend: Any, qs: list[dict], exact: np.ndarray) -> float:
    """recall@100 of the dense search against ``exact`` (the true top-100 document numbers)."""
    found = []
    for q, want in zip(qs, exact, strict=True):
        with backend.read() as view:
            iids = view.dense_search(q["vector"], 100, None)[1][0]
            got = {int(d.id[1:]) for d in view.documents(iids.tolist())}
        found.append(len(got & set(want.tolist())) / len(want))
    return float(np.mean(found))


def bm25_against_exhaustive(
    backend: PostgresBackend, exhaustive: PostgresBackend, qs: list[dict]
) -> dict[str, float]:
    """Top-100 overlap with exhaustive BM25, and both stages' p50."""
    overlap, depth_ms, exhaustive_ms = [], [], []
    for q in qs:
        lists = []
        for b, times in ((backend, depth_ms), (exhaustive, exhaustive_ms)):
            start = time.perf_counter()
            with b.read() as view:
                lists.append(view.lexical_search(q["text"], 100, None).iids.tolist())
            times.append((time.perf_counter() - start) * 1000)
        got, want = lists
        overlap.append(len(set(got) & set(want)) / max(len(want), 1))
    return {
        "top100_overlap": float(np.mean(overlap)),
        "depth_p50_ms": float(np.percentile(depth_ms, 50)),
        "exhaustive_p50_ms": float(np.percentile(exhaustive_ms, 50)),
    }


def filled(backend: Any, qs: list[dict]) -> float:
    """Share of filtered dense searches that returned a full 100."""
    full = 0
    for q in qs:
        with backend.read() as view:
            full += int(len(view.dense_search(q["vector"], 100, FILTER)[1][0]) == 100)
    return full / len(qs)


# ------------------------------------------------------------------ one size
def one_size(n: int, one: EmbeddedPostgres, coordinator, shards, count: int) -> dict[str, Any]:
    vectors, qs = vectors_and_queries(n, count)
    stored = vectors.astype(np.float16).astype(np.float32)  # what halfvec keeps
    exact = np.stack(
        [np.argpartition(-(stored @ q["vector"]), 100)[:100] for q in qs]
    )  # true top-100 (ties aside)
    del vectors, stored
    name = f"out{n}"
    entry: dict[str, Any] = {"documents": n, "ingest": {}, "adding_docs_per_s": {}}
    entry.update({k: {} for k in ("query_ms", "query_ms_cold", "filtered_fills_100")})
    shard_urls = [s.url for s in shards]
    makers = {
        "local": lambda: LocalBackend(codec="int8"),
        "one server": lambda: PostgresBackend(one.url, name),
        "spread (3 shards)": lambda: PostgresBackend(coordinator.url, name, shards=shard_urls),
    }
    for side, make in makers.items():
        backend = make()
        if isinstance(backend, PostgresBackend):
            backend.drop()
        entry["ingest"][side] = load(backend, n)
        print(n, side, "loaded", entry["ingest"][side], flush=True)
        if isinstance(backend, PostgresBackend):
            urls = where_tables_live(backend, one.url, shard_urls)
            vacuum(backend, urls)
            entry["query_ms_cold"][side] = query_path(backend, qs)
            prewarm(backend, urls)
        entry["query_ms"][side] = query_path(backend, qs)
        entry["filtered_fills_100"][side] = filled(backend, qs)
        if side == "one server":
            entry["hnsw_recall@100"] = {"default": recall(backend, qs, exact)}
            for ef in EF_SEARCH:
                tuned = PostgresBackend(one.url, name, ef_search=ef)
                entry["hnsw_recall@100"][str(ef)] = recall(tuned, qs, exact)
                tuned.close()
            exhaustive = PostgresBackend(one.url, name, bm25_depth=10**9)
            entry["bm25"] = bm25_against_exhaustive(backend, exhaustive, qs)
            exhaustive.close()
        if side.startswith("spread"):
            entry["spread_recall@100"] = recall(backend, qs, exact)
        entry["adding_docs_per_s"][side] = adding(backend, n)
        total = entry["query_ms"][side]["total"]["p50_ms"]
        print(n, side, f"total p50 {total:.1f} ms", flush=True)
        if isinstance(backend, PostgresBackend):
            backend.drop()
            backend.close()
        del backend
    print(n, {k: v for k, v in entry.items() if not k.startswith("query_ms")}, flush=True)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    # MaxSim of 100 candidates needs no second thread, and PyTorch's two threads waiting on
    # each other while the servers hold the cores cost more than they give (measured here:
    # 32 ms instead of 1.5 ms per query under load)
    torch.set_num_threads(1)
    servers = [EmbeddedPostgres().start() for _ in range(5)]
    for server in servers:
        with psycopg.connect(server.url, autocommit=True) as conn:
            for setting in SERVER_SETTINGS:
                conn.execute(f"ALTER SYSTEM SET {setting}")
            conn.execute("SELECT pg_reload_conf()")
    one, coordinator, shards = servers[0], servers[1], servers[2:]
    report: dict[str, Any] = {"server_settings": list(SERVER_SETTINGS), "sizes": {}}
    try:
        for n in args.sizes:
            report["sizes"][str(n)] = one_size(n, one, coordinator, shards, args.queries)
            write_result("scale_out", report)  # kept as each size ends
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
