"""The PostgreSQL backend at 10k and 100k synthetic documents, beside the local backend.

Synthetic collections (no model): 384-d clustered unit dense vectors, 96-d token
embeddings (as answerai-colbert-small's), 60-140 tokens per document, 60 Zipf-distributed
content words per document for BM25 (the most frequent ranks left out as stopwords). Both backends get the same documents and queries in the same run; the
query path excludes encoding (the query vectors and tokens are given) and runs the real
stages: hybrid recall (dense + BM25 + fusion), token fetch, MaxSim, final ranking with
the document lookup. PostgreSQL is timed right after the load and again after
``VACUUM ANALYZE`` (what autovacuum does to a collection in service). Reported: ingest docs/s, bytes per token on disk, per-stage p50/p95,
recall@100 of HNSW against exact search, and token fetch with float16 vs int8 codes.

    python benchmarks/scale_server.py [--sizes 10000 100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from common import write_result

from colrank.config import SearchConfig
from colrank.rank.final import rank_candidates
from colrank.recall.stage import recall
from colrank.rerank.stored import score_stored
from colrank.store.base import DocumentRows, WriteBatch
from colrank.store.local.backend import LocalBackend
from colrank.store.postgres.backend import PostgresBackend
from colrank.store.postgres.embedded import EmbeddedPostgres

DENSE, TOKENS, VOCAB = 384, 96, 50_000
STOP = 100  # the most frequent Zipf ranks play stopwords: left out, as a tokenizer drops them
STRATEGY = SearchConfig()


def corpus(n: int, seed: int = 0) -> tuple[DocumentRows, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DENSE)).astype(np.float32)
    points = centres[rng.integers(0, 200, n)] + 0.6 * rng.standard_normal((n, DENSE))
    vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    draws = rng.zipf(1.1, size=n * 60 * 8)  # about a quarter fall in the kept ranks
    draws = draws[(draws > STOP) & (draws <= STOP + VOCAB)][: n * 60]
    words = draws.reshape(n, 60)  # a content word's document frequency: ~6% at most
    texts = [" ".join(f"w{w}" for w in row) for row in words]
    tokens = []
    for length in rng.integers(60, 141, n):
        t = rng.standard_normal((length, TOKENS)).astype(np.float32)
        tokens.append(t / np.linalg.norm(t, axis=1, keepdims=True))
    metas = [{"shard": int(i % 10), "n": int(i)} for i in range(n)]
    rows = DocumentRows([f"d{i}" for i in range(n)], texts, metas, vectors, tokens)
    return rows, words


def queries(rows: DocumentRows, words: np.ndarray, count: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(rows), count, replace=False):
        v = rows.vectors[i] + 0.05 * rng.standard_normal(DENSE).astype(np.float32)
        q = rng.standard_normal((32, TOKENS)).astype(np.float32)
        out.append(
            {
                "text": " ".join(f"w{w}" for w in words[i][:4]),
                "vector": (v / np.linalg.norm(v)).astype(np.float32),
                "tokens": q / np.linalg.norm(q, axis=1, keepdims=True),
            }
        )
    return out


def ingest(backend: Any, rows: DocumentRows, step: int = 1000) -> float:
    started = time.perf_counter()
    for s in range(0, len(rows), step):
        part = DocumentRows(
            rows.ids[s : s + step],
            rows.texts[s : s + step],
            rows.metadatas[s : s + step],
            rows.vectors[s : s + step],
            rows.tokens[s : s + step],
        )
        backend.write(WriteBatch(upserts=part), dense_model="synthetic", colbert_model="synthetic")
    return len(rows) / (time.perf_counter() - started)


def query_path(backend: Any, qs: list[dict]) -> dict[str, dict[str, float]]:
    stages: dict[str, list[float]] = {}
    for q in qs[:3]:  # warm-up
        _one(backend, q, {})
    for q in qs:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        _one(backend, q, timings)
        timings["total"] = time.perf_counter() - start
        for k, v in timings.items():
            stages.setdefault(k, []).append(v * 1000)
    return {
        k: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95))}
        for k, v in stages.items()
    }


def _one(backend: Any, q: dict, timings: dict[str, float]) -> None:
    with backend.read() as view:
        r = recall(view, [q["text"]], q["vector"][None, :], 100, None, STRATEGY, timings)[0]
        colbert = score_stored(view, q["tokens"], r.iids, timings)
        rank_candidates(q["text"], r, colbert, 10, STRATEGY, 0.7, view.documents, None, timings)


def hnsw_recall(backend: PostgresBackend, exact: PostgresBackend, qs: list[dict]) -> float:
    found = []
    for q in qs:
        with backend.read() as a, exact.read() as b:
            got = set(a.dense_search(q["vector"], 100, None)[1][0].tolist())
            want = set(b.dense_search(q["vector"], 100, None)[1][0].tolist())
        found.append(len(got & want) / max(len(want), 1))
    return float(np.mean(found))


def agreement(codec: PostgresBackend, reference: PostgresBackend, qs: list[dict]) -> float:
    """Share of the reference top-10 (by MaxSim over the same 100 candidates) kept."""
    kept = []
    for q in qs:
        with reference.read() as ref:
            iids = ref.dense_search(q["vector"], 100, None)[1][0]
            want = score_stored(ref, q["tokens"], iids).total
        with codec.read() as view:
            got = score_stored(view, q["tokens"], iids).total
        top = set(np.argsort(-want)[:10].tolist())
        kept.append(len(top & set(np.argsort(-got)[:10].tolist())) / 10)
    return float(np.mean(kept))


def vacuum(url: str, backend: PostgresBackend) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table in (backend.tables.docs, backend.tables.terms):
            conn.execute(f"VACUUM ANALYZE {table}")


def disk(backend: PostgresBackend) -> dict[str, float]:
    t = backend.tables
    with backend._pool.connection() as conn:  # measurement only
        total, tokens, n_tokens, table = conn.execute(
            f"SELECT pg_total_relation_size('{t.docs}') + pg_total_relation_size('{t.terms}'), "
            f"sum(pg_column_size(tokens)), sum(n_tokens), pg_table_size('{t.docs}') "
            f"FROM {t.docs}"
        ).fetchone()
    return {
        "total_bytes": int(total),
        "bytes_per_token_column": float(tokens) / float(n_tokens),
        "bytes_per_token_all": float(total) / float(n_tokens),
        "docs_table_bytes": int(table),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with EmbeddedPostgres() as server:
        for n in args.sizes:
            rows, words = corpus(n)
            qs = queries(rows, words, args.queries)
            local = LocalBackend()
            local_rate = ingest(local, rows)
            pg = PostgresBackend(server.url, f"scale{n}", codec="float16")
            pg.drop()
            pg_rate = ingest(pg, rows)
            fresh = query_path(pg, qs)  # right after the load: cold pages, no visibility map
            vacuum(server.url, pg)  # what autovacuum does to a served collection
            exact = PostgresBackend(server.url, f"scale{n}", exact=True)
            entry = {
                "documents": n,
                "tokens": int(sum(len(t) for t in rows.tokens)),
                "ingest_docs_per_s": {"local": local_rate, "postgres": pg_rate},
                "disk": disk(pg),
                "local_token_bytes_per_token": local.stats()["bytes_per_token"],
                "query_ms": {"local": query_path(local, qs), "postgres": query_path(pg, qs)},
                "hnsw_recall@100": hnsw_recall(pg, exact, qs),
                "postgres_right_after_load_ms": fresh,
            }
            if n == min(args.sizes):  # token fetch by codec (bytes on the wire)
                for codec in ("int8", "pq32"):
                    other = PostgresBackend(server.url, f"scale{n}{codec}", codec=codec)
                    other.drop()
                    ingest(other, rows)
                    vacuum(server.url, other)
                    entry[codec] = {
                        "disk": disk(other),
                        "query_ms": query_path(other, qs),
                        "maxsim_rank_agreement": agreement(other, pg, qs),
                    }
                    other.drop()
                    other.close()
            print(n, {k: v for k, v in entry.items() if k != "query_ms"})
            for side in ("local", "postgres"):
                s = entry["query_ms"][side]
                print(f"  {side}: " + ", ".join(f"{k} {v['p50_ms']:.2f}" for k, v in s.items()))
            report[str(n)] = entry
            pg.drop()
            for b in (pg, exact):
                b.close()
            del local, rows
    write_result("scale_server", {"sizes": report})


if __name__ == "__main__":
    main()
