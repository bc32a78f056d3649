"""The ``colrank`` command: index, search, eval, bench and finetune.

Built on ``argparse`` (standard library) so the CLI adds no dependency.

Examples::

    colrank index examples/data/corpus.jsonl my-index --offline
    colrank search my-index "how does late interaction work?" -k 5
    colrank eval --data ../shared/data/scifact --index scifact-index --offline
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colrank import __version__
from colrank.config import ColrankConfig
from colrank.errors import ColrankError, InvalidInputError

logger = logging.getLogger("colrank")


def _config(args: argparse.Namespace) -> ColrankConfig:
    cfg = ColrankConfig.offline() if args.offline else ColrankConfig.from_env()
    models = cfg.models.model_copy()
    runtime = cfg.runtime.model_copy()
    if getattr(args, "dense_model", None):
        models.dense_model = args.dense_model
    if getattr(args, "colbert_model", None):
        models.colbert_model = args.colbert_model
    if getattr(args, "document_length", None):
        models.document_length = args.document_length
    if getattr(args, "device", None):
        runtime.device = args.device
    if getattr(args, "quiet", False):
        runtime.show_progress = False
    update: dict[str, Any] = {"models": models, "runtime": runtime}
    if getattr(args, "index_kind", None):
        update["dense_index"] = cfg.dense_index.model_copy(update={"kind": args.index_kind})
    return cfg.model_copy(update=update)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the bundled all-MiniLM-L6-v2 for both stages (no network); "
        "same as COLRANK_OFFLINE=1",
    )
    parser.add_argument("--dense-model", help="dense encoder: hub id, path or alias")
    parser.add_argument("--colbert-model", help="ColBERT model: hub id, path or alias")
    parser.add_argument("--document-length", type=int, help="ColBERT tokens kept per document")
    parser.add_argument("--device", help="auto, cpu, cuda[:N] or mps (default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _build_index(corpus: Path, cfg: ColrankConfig, chunk: int, passages: Any = None) -> Any:
    """Index a corpus in steps of ``chunk`` documents, with one progress bar for the whole."""
    from tqdm.auto import tqdm

    from colrank.eval.corpus import read_corpus
    from colrank.index import ColrankIndex

    if chunk < 1:
        raise InvalidInputError(f"--chunk must be at least 1, not {chunk}")
    ids, texts, metas = read_corpus(corpus, passages)
    index = ColrankIndex(cfg)
    show = cfg.runtime.show_progress
    with tqdm(total=len(texts), desc="Indexing", unit="doc", disable=not show) as bar:
        for start in range(0, len(texts), chunk):
            end = start + chunk
            index.add(texts[start:end], metas[start:end], ids[start:end], progress=False)
            bar.update(len(texts[start:end]))
    return index


def _passages(args: argparse.Namespace, cfg: ColrankConfig) -> Any:
    """The passage splitter for a folder corpus (None: a BEIR/JSONL corpus, or --no-split)."""
    corpus = Path(args.corpus)
    if args.no_split or not corpus.is_dir() or (corpus / "corpus.jsonl").is_file():
        return None
    from colrank.eval.passages import PassageSplitter
    from colrank.models.loading import resolve_model_path

    path = resolve_model_path(cfg.models.colbert_model)
    return PassageSplitter.for_model(path, args.passage_tokens, args.overlap)


def _load_or_build(args: argparse.Namespace) -> Any:
    """The index at ``--index`` when saved there; else built over ``--data`` (and saved)."""
    from colrank.index import ColrankIndex

    index_dir = Path(args.index) if args.index else None
    if index_dir is not None and (index_dir / "CURRENT").is_file():
        return ColrankIndex.load(index_dir)
    index = _build_index(Path(args.data), _config(args), getattr(args, "chunk", 2048))
    if index_dir is not None:
        index.save(index_dir)
    return index


def cmd_index(args: argparse.Namespace) -> int:
    """Build an index from a corpus and save it."""
    started = time.perf_counter()
    cfg = _config(args)
    index = _build_index(Path(args.corpus), cfg, args.chunk, _passages(args, cfg))
    index.save(args.index)
    seconds = time.perf_counter() - started
    print(f"indexed {len(index)} documents into {args.index} in {seconds:.1f} s")
    return 0


def _format_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    body = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def cmd_search(args: argparse.Namespace) -> int:
    """Search a saved index and print a ranked table (or JSON)."""
    from colrank.index import ColrankIndex

    index = ColrankIndex.load(args.index, verify=not args.no_verify)
    flt = json.loads(args.filter) if args.filter else None
    if args.dense_only:
        hits = index.dense_search(args.query, k=args.k, filter=flt)
    else:
        hits = index.search(
            args.query,
            k=args.k,
            candidates=args.candidates,
            filter=flt,
            first_stage=args.first_stage,
            rerank_fusion=args.fusion,
        )
    if args.json:
        print(json.dumps([h.__dict__ for h in hits], ensure_ascii=False, indent=2))
        return 0

    def cell(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "-"

    # score: what the list is ordered by (fused by default); then each stage's own score.
    rows = [
        [
            str(h.rank),
            cell(h.score),
            cell(h.colbert_score),
            cell(h.dense_score),
            cell(h.bm25_score),
            str(h.id),
            h.text.replace("\n", " ")[: args.width],
        ]
        for h in hits
    ]
    print(_format_table(rows, ["rank", "score", "colbert", "dense", "bm25", "id", "text"]))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate dense-only and reranked retrieval on a BEIR split."""
    from colrank.eval.corpus import load_beir
    from colrank.eval.evaluation import evaluate_index

    data = load_beir(args.data, args.split)
    index = _load_or_build(args)
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
    print(_format_table(rows, ["run", *metrics]))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """Train a ColBERT on a BEIR split's labelled queries (hard negatives from an index)."""
    from colrank.eval.corpus import load_beir
    from colrank.training.finetune import FinetuneConfig, finetune

    data = load_beir(args.data, args.split)
    index = _load_or_build(args)  # for mining hard negatives
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
    cfg = _config(args)
    result = finetune(
        args.base,
        data,
        args.out,
        index=index,
        config=FinetuneConfig(**settings),
        runtime=cfg.runtime,
    )
    print(json.dumps(result.__dict__, indent=2))
    print(f"use it: colrank index CORPUS INDEX --colbert-model {result.model_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Latency, rerank speed-up and indexing throughput on an existing index."""
    from colrank.eval.bench import indexing_throughput, query_latency, rerank_vs_reencode
    from colrank.index import ColrankIndex

    index = ColrankIndex.load(args.index)
    if args.queries:
        queries = [q.strip() for q in Path(args.queries).read_text().splitlines() if q.strip()]
    else:
        from colrank.eval.corpus import iter_jsonl

        queries = [str(r["text"]) for r in iter_jsonl(Path(args.data) / "queries.jsonl")]
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
        print(_format_table(rows, ["stage", "p50 ms", "p95 ms"]))
    r = report["rerank"]
    print(
        f"\nrerank {r['candidates']} candidates: stored {r['stored']['p50_ms']:.1f} ms vs "
        f"re-encoding {r['reencode']['p50_ms']:.1f} ms (p50) -> {r['speedup_p50']:.0f}x; "
        f"max score diff {r['max_abs_score_diff']:.4f}"
    )
    if "indexing" in report:
        i = report["indexing"]
        print(
            f"indexing: colrank {i['colrank_docs_per_s']:.1f} docs/s vs PyLate "
            f"{i['pylate_docs_per_s']:.1f} docs/s ({i['speedup']:.2f}x)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``colrank`` command."""
    parser = argparse.ArgumentParser(
        prog="colrank", description="FAISS dense recall + ColBERT MaxSim reranking."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"colrank {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build an index from a corpus")
    p.add_argument("corpus", help="BEIR dir, corpus .jsonl, or a folder of .txt/.md files")
    p.add_argument("index", help="output index directory")
    p.add_argument("--chunk", type=int, default=2048, help="documents encoded per step")
    p.add_argument("--index-kind", choices=["flat", "hnsw", "ivf"], help="FAISS index type")
    p.add_argument(
        "--passage-tokens",
        type=int,
        default=200,
        help="a folder's files are split into passages of at most this many ColBERT tokens "
        "(default 200; the offline model keeps 256 per document)",
    )
    p.add_argument(
        "--overlap", type=int, default=32, help="tokens consecutive passages share (default 32)"
    )
    p.add_argument("--no-split", action="store_true", help="index each file whole (truncated)")
    _model_args(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search an index")
    p.add_argument("index", help="index directory")
    p.add_argument("query", help="the question")
    p.add_argument("-k", type=int, default=10, help="results (default 10)")
    p.add_argument("--candidates", type=int, default=100, help="dense candidates to rerank")
    p.add_argument("--filter", help='metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\'')
    p.add_argument("--dense-only", action="store_true", help="skip the ColBERT rerank")
    p.add_argument("--first-stage", choices=["dense", "bm25", "hybrid"], help="recall strategy")
    p.add_argument(
        "--fusion", choices=["none", "interpolate", "rrf"], help="fuse ColBERT with recall scores"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--width", type=int, default=80, help="text column width")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="nDCG@10 / Recall / MRR on a BEIR dataset")
    p.add_argument("--data", required=True, help="BEIR dataset directory")
    p.add_argument("--split", default="test", help="qrels split to evaluate (default test)")
    p.add_argument("--index", help="index dir to reuse (built and saved there if missing)")
    p.add_argument("--candidates", default="10,30,100,300", help="rerank depths, comma-separated")
    p.add_argument("--first-stages", default="dense", help="comma-separated: dense, bm25, hybrid")
    p.add_argument(
        "--weights",
        help="ColBERT weights to sweep for interpolation fusion at depth 100, e.g. 0,0.5,1",
    )
    p.add_argument("--rrf", action="store_true", help="also report ColBERT + first-stage RRF")
    p.add_argument("--chunk", type=int, default=2048, help="documents encoded per step")
    p.add_argument("--json", action="store_true", help="print JSON")
    _model_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("finetune", help="train a ColBERT on a BEIR split (offline)")
    p.add_argument("--base", default="offline:minilm", help="starting model (path, id or alias)")
    p.add_argument("--data", required=True, help="BEIR dataset directory")
    p.add_argument("--split", default="train", help="qrels split to train on (never test)")
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument(
        "--index", help="index over the corpus to mine negatives (built and saved there if missing)"
    )
    p.add_argument("--epochs", type=float, help="passes over the training pairs")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--batch-size", type=int, help="training pairs per step")
    p.add_argument("--learning-rate", type=float, help="AdamW learning rate")
    p.add_argument("--negatives", type=int, help="hard negatives per positive")
    p.add_argument("--train-document-length", type=int, help="document tokens while training")
    p.add_argument(
        "--corpus-pairs",
        type=int,
        help="add up to N unsupervised (title -> body) pairs from the corpus (few labels)",
    )
    _model_args(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("bench", help="latency, rerank speed-up and indexing throughput")
    p.add_argument("index", help="index directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--queries", help="text file, one query per line")
    src.add_argument("--data", help="BEIR directory (its queries.jsonl)")
    p.add_argument("-n", type=int, default=50, help="queries to time (default 50)")
    p.add_argument("--candidates", type=int, default=100, help="candidates reranked per query")
    p.add_argument("--reencode", type=int, default=5, help="queries timed with re-encoding")
    p.add_argument("--indexing", type=int, default=0, help="documents for the throughput test")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colrank`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_third_party()
    try:
        return int(args.func(args) or 0)
    except ColrankError as exc:
        print(f"colrank: error: {exc}", file=sys.stderr)
        return 2


def _quiet_third_party() -> None:
    """Silence load reports and hub chatter from transformers (our own logs stay)."""
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
