"""``colrank index`` and ``colrank search``: build a collection, ask it a question.

Example:
    >>> from colrank.cli import main
    >>> main(["search", "my-index", "why does bread rise?", "-k", "3"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from colrank.cli.common import (
    build_index,
    flags_config,
    format_table,
    is_url,
    open_target,
    passage_splitter,
)
from colrank.errors import InvalidFilterError, InvalidInputError
from colrank.store.local.snapshots import check_index_folder


def cmd_index(args: argparse.Namespace) -> int:
    """Build an index from a corpus and save it (or write it into a database)."""
    started = time.perf_counter()
    cfg = flags_config(args)
    if args.store and args.index:
        raise InvalidInputError("give an index folder or --store, not both")
    target = args.store or args.index
    if target is None:
        raise InvalidInputError("give an index folder, or --store postgresql://...")
    if args.store and not is_url(args.store):
        raise InvalidInputError(f"--store takes a postgresql://... URL, not {args.store!r}")
    if not is_url(target):
        check_index_folder(Path(target))  # before encoding anything: a file in the way
    if is_url(target):
        built = build_index(Path(args.corpus), cfg, args.chunk, passage_splitter(args, cfg))
        index = open_target(target, args, cfg)
        index.copy_from(built, progress=cfg.runtime.show_progress)
    else:
        index = build_index(Path(args.corpus), cfg, args.chunk, passage_splitter(args, cfg))
        index.save(target)
    seconds = time.perf_counter() - started
    print(f"indexed {len(index)} documents into {target} in {seconds:.1f} s")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Search a saved index and print a ranked table (or JSON)."""
    index = open_target(args.index, args)
    flt = None
    if args.filter:
        try:
            flt = json.loads(args.filter)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
            raise InvalidFilterError(
                f'--filter must be a JSON object such as \'{{"topic": "geo"}}\', '
                f"not {args.filter[:60]!r} ({why})"
            ) from exc
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
    print(format_table(rows, ["rank", "score", "colbert", "dense", "bm25", "id", "text"]))
    return 0
