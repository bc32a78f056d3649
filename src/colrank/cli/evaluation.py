"""``colrank eval``, ``colrank finetune`` and ``colrank bench`` (apart from the query path).

Example:
    >>> from colrank.cli import main
    >>> main(["bench", "my-index", "--data", "../shared/data/scifact"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from colrank.cli.common import flags_config, format_table, load_or_build
from colrank.errors import InvalidInputError


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate dense-only and reranked retrieval on a BEIR split."""
    from colrank.eval.corpus import load_beir
    from colrank.eval.evaluation import evaluate_index

    data = load_beir(args.data, args.split)
    index = load_or_build(args)
    depths = [int(x) for x in args.candidates.split(",")]
    weights = [float(x) for x in args.weights.split(",")] if args.weights else []
    report = evaluate_index(
        index,
        data,
        depths,
        first_stages=args.first_stages.split(","),
        weights=weights,
        with_rrf=args.rrf,
        progress=not args.quiet,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    metrics = list(next(iter(report.values())))
    rows = [[name, *[f"{values[m]:.4f}" for m in metrics]] for name, values in report.items()]
    print(f"{args.data} ({args.split}: {len(data.queries)} queries, {len(index)} documents)")
    print(format_table(rows, ["run", *metrics]))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Train a ColBERT on a BEIR split's labelled queries (hard negatives from an index)."""
    from colrank.eval.corpus import load_beir
    from colrank.training.finetune import FinetuneConfig, finetune

    data = load_beir(args.data, args.split)
    index = load_or_build(args)  # for mining hard negatives
    settings = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "negatives_per_pair": args.negatives,
            "document_length": args.train_document_length,
            "corpus_pairs": args.corpus_pairs,
        }.items()
        if v is not None
    }
    cfg = flags_config(args)
    result = finetune(
        args.base,
        data,
        args.out,
        index=index,
        config=FinetuneConfig(**settings),
        runtime=cfg.runtime,
        trust_remote_code=cfg.models.trust_remote_code,
    )
    print(json.dumps(result.__dict__, indent=2))
    print(f"use it: colrank index CORPUS INDEX --colbert-model {result.model_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Latency, rerank speed-up and indexing throughput on an existing index."""
    from colrank.eval.bench import indexing_throughput, query_latency, rerank_vs_reencode
    from colrank.index import ColrankIndex

    if args.n < 1:
        raise InvalidInputError(f"-n must be at least 1, not {args.n}")
    source = Path(args.queries) if args.queries else Path(args.data) / "queries.jsonl"
    if not source.is_file():
        raise InvalidInputError(f"no queries file at {source}")
    index = ColrankIndex.load(args.index, trust_models=args.trust_models)
    if args.queries:
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        queries = [q.strip() for q in lines if q.strip()]
    else:
        from colrank.eval.corpus import iter_jsonl

        queries = [str(r.get("text", "")) for r in iter_jsonl(source) if r.get("text")]
    if not queries:
        raise InvalidInputError(f"{source} holds no queries")
    queries = queries[: args.n]
    report: dict[str, Any] = {
        "default_search": query_latency(index, queries, args.candidates, progress=not args.json),
        "core_search": query_latency(
            index,
            queries,
            args.candidates,
            progress=not args.json,
            first_stage="dense",
            rerank_fusion="none",
        ),
        "rerank": rerank_vs_reencode(index, queries, args.reencode, args.candidates),
    }
    if args.indexing:
        sample = index.get(index.ids()[: args.indexing])
        report["indexing"] = indexing_throughput(index, [d.text for d in sample])
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name in ("default_search", "core_search"):
        rows = [
            [k, f"{v['p50_ms']:.2f}", f"{v['p95_ms']:.2f}"]
            for k, v in report[name]["stages"].items()
        ]
        total = report[name]["total"]
        rows.append(["total", f"{total['p50_ms']:.2f}", f"{total['p95_ms']:.2f}"])
        print(f"\n{name} ({len(queries)} queries, {args.candidates} candidates)")
        print(format_table(rows, ["stage", "p50 ms", "p95 ms"]))
    r = report["rerank"]
    print(
        f"\nrerank {r['candidates']} candidates: stored {r['stored']['p50_ms']:.1f} ms vs "
        f"re-encoding {r['reencode']['p50_ms']:.1f} ms (p50) -> {r['speedup_p50']:.0f}x; "
        f"max score diff {r['max_abs_score_diff']:.4f}"
    )
    if "indexing" in report:
        i = report["indexing"]
        print(
            f"indexing ({i['engine']}, dense + ColBERT): colrank {i['colrank_docs_per_s']:.1f} "
            f"docs/s vs PyLate encode (ColBERT only) {i['pylate_docs_per_s']:.1f} docs/s "
            f"({i['speedup']:.2f}x)"
        )
    return 0
