"""The PostgreSQL backend against the local one on the shared corpora: same queries, same models.

For SciFact test and MS MARCO DL19, the saved local index (offline models) is copied into
a real PostgreSQL 18 + pgvector server (no re-encoding), once with exact dense search over
float32 ``vector`` and once with HNSW over ``halfvec`` (the server default). Each variant
runs the default search and dense recall on every test query; the report gives nDCG@10 of
both backends, how many queries have the same top-10 ids as the local backend, and the
largest score difference. BM25 runs in SQL with the local tokenizer and formula, so hybrid
recall is the local one (lexical recall in server mode: exact BM25, not PostgreSQL's
``ts_rank``, whose scores have no fixed scale for the calibrated fusion).

    python benchmarks/server_quality.py     # needs indexes/{scifact,msmarco-dl19}-offline
"""

from __future__ import annotations

import time

import numpy as np
from common import ROOT, write_result

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.metrics import evaluate
from colrank.store.postgres.embedded import EmbeddedPostgres

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")
VARIANTS = {
    "exact (vector)": {"exact": True, "dense_type": "vector"},
    "hnsw (halfvec)": {"exact": False, "dense_type": "halfvec"},
}


def runs(index: ColrankIndex, queries: dict[str, str]) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {"default": {}, "dense": {}}
    for qid, text in queries.items():
        out["default"][qid] = index.search(text, k=10, candidates=100)
        out["dense"][qid] = index.dense_search(text, k=10)
    return out


def main() -> None:
    report: dict[str, dict] = {}
    with EmbeddedPostgres() as server:
        for corpus in CORPORA:
            local = ColrankIndex.load(ROOT / "indexes" / f"{corpus}-offline")
            data = load_beir(DATA / corpus, "test")
            base = runs(local, data.queries)
            rows = {"local": _metrics(base, data.qrels)}
            for label, options in VARIANTS.items():
                name = f"q_{corpus.replace('-', '_')}_{options['dense_type']}"
                index = ColrankIndex.open(server.url, name, local.config, **options)
                index.backend.drop()
                started = time.perf_counter()
                index.copy_from(local)
                copy_s = time.perf_counter() - started
                got = runs(index, data.queries)
                row = _metrics(got, data.qrels)
                for kind in ("default", "dense"):
                    same = sum(
                        [h.id for h in got[kind][q]] == [h.id for h in base[kind][q]]
                        for q in data.queries
                    )
                    diff = max(
                        (
                            abs(a.score - b.score)
                            for q in data.queries
                            for a, b in zip(got[kind][q], base[kind][q], strict=False)
                            if a.id == b.id
                        ),
                        default=0.0,
                    )
                    row[f"{kind}_same_top10"] = f"{same}/{len(data.queries)}"
                    row[f"{kind}_max_score_diff"] = diff
                row["copy_s"] = copy_s
                rows[label] = row
                print(corpus, label, {k: v for k, v in row.items() if "ndcg" in k or "same" in k})
                index.backend.drop()
                index.backend.close()
            report[corpus] = rows
    write_result("server_quality", {"corpora": report})


def _metrics(run: dict[str, dict[str, list]], qrels) -> dict[str, float]:
    out = {}
    for kind, hits in run.items():
        ranked = {q: [h.id for h in hs] for q, hs in hits.items()}
        out[f"{kind}_ndcg@10"] = float(np.round(evaluate(ranked, qrels)["ndcg@10"], 4))
    return out


if __name__ == "__main__":
    main()
