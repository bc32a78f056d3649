"""The ``colrank`` command: index, search, eval, bench and finetune.

Built on ``argparse`` (standard library) so the CLI adds no dependency.

Examples::

    colrank index examples/data/corpus.jsonl my-index --offline
    colrank search my-index "how does late interaction work?" -k 5
    colrank eval --data ../shared/data/scifact --index scifact-index --offline
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, get_args

from colrank import __version__
from colrank.cli.collection import cmd_index, cmd_search
from colrank.cli.common import add_model_args, add_trust_arg
from colrank.cli.evaluation import cmd_bench, cmd_eval, cmd_finetune
from colrank.config import SearchConfig
from colrank.errors import ColrankError

logger = logging.getLogger("colrank")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line like every other colrank error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"colrank: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``colrank`` command."""
    parser = _Parser(
        prog="colrank", description="Hybrid recall (dense + BM25) + ColBERT MaxSim reranking."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"colrank {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build an index from a corpus")
    p.add_argument(
        "corpus",
        help="BEIR dir, corpus .jsonl, or a folder of .txt/.md files (with a ColPali-family "
        "--colbert-model: a folder of PDFs and images, a document per page)",
    )
    p.add_argument("index", nargs="?", help="output index directory (or use --store)")
    p.add_argument("--store", help="write into a database instead: postgresql://user@host/db")
    p.add_argument("--collection", default="default", help="collection name in the database")
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
    p.add_argument("--overwrite", action="store_true", help="replace an index already there")
    p.add_argument("--append", action="store_true", help="add the corpus to an index already there")
    add_model_args(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search an index")
    p.add_argument("index", help="index directory, or postgresql://... (with --collection)")
    p.add_argument("--collection", default="default", help="collection name in the database")
    p.add_argument("query", help="the question")
    p.add_argument("-k", type=int, default=10, help="results (default 10)")
    p.add_argument(
        "--candidates", type=int, default=100, help="first-stage candidates to rerank (at least -k)"
    )
    p.add_argument("--filter", help='metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\'')
    p.add_argument("--dense-only", action="store_true", help="skip the ColBERT rerank")
    p.add_argument(
        "--first-stage",
        choices=["dense", "bm25", "hybrid", "visual", "muvera"],
        help=(
            "recall strategy (visual: MaxSim over every page, for a ColPali-family index; "
            "muvera: MUVERA encodings of the stored ColBERT tokens, no dense model)"
        ),
    )
    p.add_argument(
        "--fusion",
        choices=get_args(SearchConfig.model_fields["rerank_fusion"].annotation),
        help="how ColBERT and the recall scores make the final score (default calibrated)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--width", type=int, default=80, help="text column width")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    add_trust_arg(p)
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
    add_model_args(p)
    add_trust_arg(p)
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
    add_model_args(p)
    add_trust_arg(p)
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
    add_trust_arg(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colrank`` command."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_third_party()
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except ColrankError as exc:
        print(f"colrank: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("colrank: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `colrank search ... | head` closed the pipe: output not wanted
        _quiet_stdout()
        return 0
    except Exception as exc:  # one line, not a traceback (-v shows it)
        if args.verbose:
            raise
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"colrank: error: {type(exc).__name__}: {what} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so Python's exit flush does not raise on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured in tests)
        pass


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
