"""Speed of the default search before and after the calibrated default, side by side.

Runs ``colrank bench --json`` of two checkouts in alternating rounds on the same saved
index and queries: ``--before`` (a git worktree of the earlier commit, e.g.
``git worktree add /tmp/colrank-before bdb4ead``) and this checkout. Both read the same
index; each searches with its own defaults.

    python benchmarks/default_search_speed.py --before /tmp/colrank-before [--rounds 3]

``--name refactor_speed`` writes the result under another name (the storage-backend
refactor was timed this way against the commit before it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from common import ROOT, SCIFACT, SCIFACT_INDEX, write_result


def bench(src: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    argv = ["bench", str(SCIFACT_INDEX), "--data", str(SCIFACT), "-n", str(n), "--reencode", "1"]
    code = f"import sys; from colrank.cli import main; sys.exit(main({[*argv, '--json']!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--name", default="default_search_speed", help="result file name")
    args = parser.parse_args()
    sides = {"before": args.before / "src", "after": ROOT / "src"}
    rounds: dict[str, list[dict]] = {k: [] for k in sides}
    for i in range(args.rounds):
        for name, src in sides.items():
            report = bench(src, args.n)
            rounds[name].append(report)
            p50 = report["default_search"]["total"]["p50_ms"]
            print(f"round {i + 1} {name:<6} default search p50 {p50:.1f} ms")
    summary = {}
    for name, reports in rounds.items():
        per_stage: dict[str, dict[str, float]] = {}
        for search in ("default_search", "core_search"):
            per_stage[search] = {
                "total": float(np.median([r[search]["total"]["p50_ms"] for r in reports])),
                **{
                    stage: float(np.median([r[search]["stages"][stage]["p50_ms"] for r in reports]))
                    for stage in reports[0][search]["stages"]
                },
            }
        summary[name] = per_stage
    for search in ("default_search", "core_search"):
        b, a = (summary[k][search]["total"] for k in ("before", "after"))
        print(f"{search}: before {b:.1f} ms, after {a:.1f} ms p50 (median of rounds)")
    write_result(
        args.name,
        {"queries": args.n, "rounds": args.rounds, "p50_ms": summary, "raw": rounds},
    )


if __name__ == "__main__":
    main()
