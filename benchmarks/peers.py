"""colrank beside the real peers, on the same SciFact queries and the same local model.

Every method reranks (or retrieves) for the same SciFact test queries with the offline
MiniLM: the rerankers get the same dense top-100 candidates from colrank's index.

- colrank ``search`` (default) and the core ``dense -> ColBERT`` rerank, stored tokens;
- PyLate: re-encode the query and the 100 candidates, score with ``rank.rerank``;
- LlamaIndex ``ColbertRerank`` (``llama-index-postprocessor-colbert-rerank``) pointed at
  the same local model (it encodes each candidate separately, without a projection);
- PyLate's PLAID index end to end (``--plaid``): built from the index's stored token
  embeddings (decoded; the same model's), queries encoded by PyLate; full ColBERT
  retrieval, not a rerank. Its build takes many minutes on a 2-core CPU.

Latency p50/p95 per query and nDCG@10 on those queries.

    python benchmarks/peers.py [--queries 20] [--plaid]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from common import ROOT, percentiles, write_result

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.metrics import ndcg_at_k

DATA = ROOT / ".." / "shared" / "data" / "scifact"


def run(
    name: str, queries: dict[str, str], fn: Callable[[str], list[str]], qrels, out: dict
) -> None:
    fn(next(iter(queries.values())))  # warm-up
    seconds, ndcg = [], []
    for qid, text in queries.items():
        start = time.perf_counter()
        ranked = fn(text)
        seconds.append(time.perf_counter() - start)
        ndcg.append(ndcg_at_k({qid: ranked}, {qid: qrels.get(qid, {})}, 10))
    out[name] = {**percentiles(seconds), "ndcg@10": float(np.mean(ndcg)), "per_query": ndcg}
    print(f"{name:<40} p50 {out[name]['p50_ms']:9.1f} ms  nDCG@10 {out[name]['ndcg@10']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--plaid", action="store_true", help="also build and query PLAID")
    args = parser.parse_args()
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    data = load_beir(DATA, "test")
    queries = dict(list(data.queries.items())[: args.queries])
    index = ColrankIndex.load(ROOT / "indexes" / "scifact-offline")
    model = index.colbert_encoder.model  # PyLate ColBERT: the same weights colrank uses
    folder = model[0].auto_model.name_or_path
    candidates = {
        q: [h.id for h in index.recall(q, k=100, first_stage="dense")] for q in queries.values()
    }
    texts = {d.id: d.text for q in candidates.values() for d in index.get(q)}
    results: dict[str, dict] = {}

    run(
        "colrank search (default)",
        queries,
        lambda q: [h.id for h in index.search(q, k=10)],
        data.qrels,
        results,
    )
    core = {"first_stage": "dense", "rerank_fusion": "none"}
    run(
        "colrank dense -> ColBERT (stored tokens)",
        queries,
        lambda q: [h.id for h in index.search(q, k=10, candidates=100, **core)],
        data.qrels,
        results,
    )

    from pylate import rank

    def pylate_rerank(q: str) -> list[str]:
        ids = candidates[q]
        q_emb = model.encode([q], is_query=True, show_progress_bar=False)
        d_emb = model.encode(
            [texts[i] for i in ids], is_query=False, batch_size=32, show_progress_bar=False
        )
        ranked = rank.rerank(
            documents_ids=[ids], queries_embeddings=q_emb, documents_embeddings=[d_emb]
        )
        return [r["id"] for r in ranked[0][:10]]

    run("PyLate re-encode + rank.rerank", queries, pylate_rerank, data.qrels, results)

    try:
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
        from llama_index.postprocessor.colbert_rerank import ColbertRerank
    except ImportError:
        print("llama-index-postprocessor-colbert-rerank is not installed: skipped")
    else:
        reranker = ColbertRerank(top_n=10, model=folder, tokenizer=folder, device="cpu")

        def colbert_rerank(q: str) -> list[str]:
            nodes = [
                NodeWithScore(node=TextNode(id_=i, text=texts[i]), score=0.0) for i in candidates[q]
            ]
            out = reranker.postprocess_nodes(nodes, query_bundle=QueryBundle(q))
            return [n.node.node_id for n in out]

        run("LlamaIndex ColbertRerank 0.6", queries, colbert_rerank, data.qrels, results)

    plaid_build = None
    if args.plaid:
        from pylate import indexes, retrieve

        ids = index.ids()
        with index.backend.read() as view:
            iids = view.iids_for(ids)
            embeddings = view.token_embeddings([iids[i] for i in ids])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            plaid = indexes.PLAID(
                index_folder=tmp, index_name="scifact", override=True, show_progress=False
            )
            plaid.add_documents(
                documents_ids=ids, documents_embeddings=[e.astype(np.float32) for e in embeddings]
            )
            plaid_build = time.perf_counter() - start
            print(f"PLAID build: {plaid_build:.0f} s for {len(ids)} documents")
            for label, full in (("default", None), ("n_full_scores=256", 256)):
                if full is not None:  # the search setting lives on the inner FastPlaid index
                    inner = getattr(plaid, "_index", plaid)
                    inner.n_full_scores = full
                retriever = retrieve.ColBERT(index=plaid)

                def plaid_search(q: str, retriever=retriever) -> list[str]:
                    q_emb = model.encode([q], is_query=True, show_progress_bar=False)
                    return [r["id"] for r in retriever.retrieve(queries_embeddings=q_emb, k=10)[0]]

                run(f"PyLate PLAID ({label})", queries, plaid_search, data.qrels, results)

    base = results["colrank dense -> ColBERT (stored tokens)"]["p50_ms"]
    for row in results.values():
        row["ratio_to_colrank_rerank"] = row["p50_ms"] / base
    write_result(
        "peers",
        {
            "queries": len(queries),
            "candidates": 100,
            "plaid_build_seconds": plaid_build,
            "methods": results,
        },
    )


if __name__ == "__main__":
    main()
