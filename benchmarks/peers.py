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

``--warp`` runs the side by side with PyLate's WARP engine instead (``warp_peer.py`` says
how WARP is built and searched; written to ``results/peers_warp.json``): colrank's default
search and its dense -> ColBERT rerank, and WARP with PyLate's defaults (nprobe 32) and with
xtr-warp's own auto settings, each via PyLate's wrapper and calling xtr-warp directly, all
at 1 and then 2 threads. Per row: p50/p95 of the search after query encoding and end to end
(encoding included), nDCG@10; WARP's build seconds and bytes, colrank's index bytes.

- Threads: ``torch.set_num_threads(n)`` and ``faiss.omp_set_num_threads(n)``, the index is
  loaded again (its ONNX Runtime sessions take torch's count when made), and WARP gets
  ``num_threads=n`` (its own Rust thread pool; PyLate's wrapper defaults to 1). WARP is
  built once, at 2 threads.
- colrank end to end: ``index.search(q, k=10, timings=t)`` wall time; after encoding: that
  minus the encode stages in ``t`` (``dense_encode``, ``colbert_encode``, ``encode``).
- WARP end to end: PyLate ``encode([q], is_query=True)`` with the index's own ColBERT, then
  the search; after encoding: the search alone (same loop, timed apart).
- Workaround, stated in the report: PyLate's default WARP build crashes on SciFact (torch
  ``quantile()`` input too large on xtr-warp's 1M-token codec sample); the build passes
  ``codec_sample_max_tokens=40_000`` to xtr-warp's ``create``.
- ``--warp-docs N`` builds WARP on the first N documents only and ``--index PATH`` takes
  another saved index: smoke runs, whose nDCG@10 means nothing.

xtr-warp-rs is not a colrank dependency (its wheel is per torch minor): install the build
for your torch, ``pip install "xtr-warp-rs==2.1.0.<torch major><torch minor>0"``, e.g.
``2.1.0.2110`` for torch 2.11 and ``2.1.0.290`` for torch 2.9 (``pip index versions
xtr-warp-rs`` lists them). Without it the WARP rows are skipped.

    python benchmarks/peers.py [--queries 20] [--plaid]
    python benchmarks/peers.py --warp [--queries 0] [--warp-docs N] [--index PATH]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import SCIFACT, SCIFACT_INDEX, percentiles, scifact_index, write_result
from report_warp import acceptance_line
from warp_peer import (
    CODEC_SAMPLE_TOKENS,
    acceptance,
    auto_settings,
    build_warp,
    colrank_steps,
    index_bytes,
    measure,
    stored_tokens,
    warp_missing,
    warp_steps,
)

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.metrics import ndcg_at_k

THREADS = (1, 2)


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


def set_threads(threads: int) -> None:
    """PyTorch's and FAISS's thread counts (ONNX Runtime sessions made after take torch's)."""
    import faiss

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def warp_side_by_side(args: argparse.Namespace, data) -> None:
    """colrank and WARP at 1 and 2 threads, one run: ``results/peers_warp.json``."""
    path = Path(args.index) if args.index else SCIFACT_INDEX
    if not args.index:
        scifact_index()  # built and saved the first time
    queries = dict(list(data.queries.items())[: args.queries or None])
    base = ColrankIndex.load(path)
    ids = base.ids()
    engine = [base.encoders.engine, base.encoders.runtime.dtype]
    warp_ids = ids[: args.warp_docs] if args.warp_docs else ids
    smoke = len(warp_ids) < len(ids) or len(ids) < len(data.ids)
    missing = warp_missing()
    rows, build, auto = [], None, None
    with tempfile.TemporaryDirectory() as tmp:
        if missing:
            print(missing)
        else:
            set_threads(max(THREADS))
            build = build_warp(base, warp_ids, Path(tmp))
            auto = auto_settings(build, base.colbert_encoder.model, next(iter(queries.values())))
            print(
                f"WARP build: {build.seconds:.1f} s, {build.bytes / 1e6:.1f} MB for "
                f"{len(warp_ids)} documents; auto settings for the first query: {auto}"
            )
        del base
        for threads in THREADS:
            set_threads(threads)
            index = ColrankIndex.load(path)  # fresh: its ONNX Runtime sessions take `threads`
            steps = colrank_steps(index)
            if build is not None:
                steps |= warp_steps(build, index.colbert_encoder.model, threads)
            rows += [measure(n, threads, queries, data.qrels, s) for n, s in steps.items()]
            del index, steps
    accepted = acceptance(rows)
    for line in map(acceptance_line, accepted):
        print(line)
    if smoke:
        print(
            f"SMOKE RUN: colrank holds {len(ids)} of {len(data.ids)} documents, WARP "
            f"{len(warp_ids)}: nDCG@10 means nothing, and the timings compare unequal corpora"
        )
    write_result(
        "peers_warp",
        {
            "queries": len(queries),
            "documents": len(ids),
            "warp_documents": len(warp_ids),
            "smoke": smoke,
            "threads": list(THREADS),
            "colrank_engine": engine,
            "colrank_index_bytes": index_bytes(path),
            "warp": None
            if build is None
            else {
                "build_seconds": build.seconds,
                "build_threads": max(THREADS),
                "bytes": build.bytes,
                "codec_sample_max_tokens": CODEC_SAMPLE_TOKENS,
                "auto_settings_first_query": auto,
            },
            "warp_skipped": missing,
            "rows": rows,
            "acceptance": accepted,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--queries", type=int, default=None, help="queries (default 20; all for --warp, or 0)"
    )
    parser.add_argument("--plaid", action="store_true", help="also build and query PLAID")
    parser.add_argument("--warp", action="store_true", help="the side by side with WARP")
    parser.add_argument("--warp-docs", type=int, default=0, help="WARP on the first N docs")
    parser.add_argument("--index", help="a saved index (default: the offline SciFact one)")
    args = parser.parse_args()
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)
    data = load_beir(SCIFACT, "test")
    if args.warp:
        warp_side_by_side(args, data)
        return
    torch.set_num_threads(2)
    queries = dict(
        list(data.queries.items())[: 20 if args.queries is None else args.queries or None]
    )
    index = ColrankIndex.load(args.index) if args.index else scifact_index()[0]
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
        embeddings = stored_tokens(index, ids)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            plaid = indexes.PLAID(
                index_folder=tmp, index_name="scifact", override=True, show_progress=False
            )
            plaid.add_documents(documents_ids=ids, documents_embeddings=embeddings)
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
