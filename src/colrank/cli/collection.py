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
from typing import TYPE_CHECKING

from colrank.cli.common import (
    build_index,
    flags_config,
    format_table,
    is_url,
    open_target,
    passage_splitter,
)
from colrank.errors import InvalidFilterError, InvalidInputError
from colrank.store.local.snapshots import CURRENT_FILE, check_index_folder

if TYPE_CHECKING:
    from colrank.config import ColrankConfig
    from colrank.index import ColrankIndex


def cmd_index(args: argparse.Namespace) -> int:
    """Build an index from a corpus and save it (or write it into a database).

    An existing index is kept unless ``--overwrite`` (replace it) or ``--append`` (add
    the corpus to it) says otherwise.
    """
    started = time.perf_counter()
    cfg = flags_config(args)
    if args.store and args.index:
        raise InvalidInputError("give an index folder or --store, not both")
    target = args.store or args.index
    if target is None:
        raise InvalidInputError("give an index folder, or --store postgresql://...")
    if args.store and not is_url(args.store):
        raise InvalidInputError(f"--store takes a postgresql://... URL, not {args.store!r}")
    if args.overwrite and args.append:
        raise InvalidInputError("--overwrite replaces the index, --append adds to it: pick one")
    database = is_url(target)
    if not database:
        check_index_folder(Path(target))  # before encoding anything: a file in the way
    existing = _existing(target, args, cfg, database)
    passages = passage_splitter(args, cfg)
    if existing is not None and args.append:
        before = len(existing)
        index = build_index(Path(args.corpus), cfg, args.chunk, passages, into=existing)
        if not database:
            index.save(target)
        what = f"added {len(index) - before} documents ({len(index)} in all)"
    else:
        built = build_index(Path(args.corpus), cfg, args.chunk, passages)
        if database:
            index = existing if existing is not None else open_target(target, args, cfg)
            stale = set(index.ids()) - set(built.ids())
            index.copy_from(built, progress=cfg.runtime.show_progress)
            if stale:
                index.delete(sorted(stale))
        else:
            index = built
            index.save(target)
        what = f"indexed {len(index)} documents"
    seconds = time.perf_counter() - started
    print(f"{what} into {target} in {seconds:.1f} s")
    return 0


def _existing(
    target: str, args: argparse.Namespace, cfg: ColrankConfig, database: bool
) -> ColrankIndex | None:
    """The index already at ``target`` (None: none yet); refused without a flag that says why."""
    from colrank.index import ColrankIndex

    if database:
        index = open_target(target, args, cfg)
        if len(index) == 0:
            return None
    elif (Path(target) / CURRENT_FILE).is_file():
        if not (args.overwrite or args.append):
            raise InvalidInputError(_occupied(target, "an index"))
        return ColrankIndex.load(target, cfg) if args.append else None
    else:
        return None
    if not (args.overwrite or args.append):
        raise InvalidInputError(_occupied(target, f"{len(index)} documents"))
    return index


def _occupied(target: str, what: str) -> str:
    return (
        f"{target} already holds {what}; pass --overwrite to replace it or --append to add "
        "the corpus to it"
    )


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
