"""The report's section on one forward per text for the offline stand-in (make_report.py).

Renders ``benchmarks/results/one_forward.json`` (``benchmarks/one_forward.py``): nDCG@10 of
the stand-in reading its inputs ``marked`` and ``plain`` on both corpora, the verdict of the
rule fixed before the run, and the indexing speed side by side when it was measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Provenance = Callable[[dict[str, Any]], str]
CORPORA = {"scifact": "SciFact test", "msmarco-dl19": "MS MARCO DL19"}
METRICS = {
    "default_ndcg@10": "default search",
    "dense>colbert_ndcg@10": "dense -> ColBERT",
    "dense_ndcg@10": "dense (check)",
}


def _quality_engine(r: dict[str, Any]) -> str:
    engines = {row.get("engine") for c in r.get("runs", {}).values() for row in c.values()}
    return ", ".join(sorted(str(e) for e in engines)) or "default"


def one_forward_section(r: dict[str, Any], provenance: Provenance) -> list[str]:
    """Quality table, verdict and (when measured) indexing docs/s."""
    lines = [
        "## One forward per text for the offline stand-in",
        "",
        "The stand-in ColBERT (MiniLM, identity projection, untrained) reading its inputs "
        "`marked` (PyLate's ColBERT input: markers, queries padded with [MASK]; a second "
        "forward beside the dense one) or `plain` (the text as the dense model reads it: "
        "the dense vector and the tokens from one forward). Whole corpora, offline config, "
        f"engine `{_quality_engine(r)}` (the default when measured). Rule fixed before the "
        "run: `plain` becomes the offline default only if no nDCG@10 of the default search or "
        "of dense -> ColBERT drops by more than 0.3 points on either corpus.",
        "",
    ]
    if "runs" in r:
        lines += _quality_lines(r)
        measured = r.get("quality_measured") or {}
        if measured and measured.get("command") != r.get("command"):
            lines += [
                f"Quality measured by `{measured['command']}`"
                + (f" ({measured['date']})" if measured.get("date") else "")
                + "; the speed below by the command at the end.",
                "",
            ]
    if "speed" in r:
        lines += _speed_lines(r["speed"])
    lines += ["", provenance(r), ""]
    return lines


def _quality_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "| corpus | nDCG@10 | marked | plain | plain - marked (points) |",
        "|---|---|---|---|---|",
    ]
    for corpus, name in CORPORA.items():
        row = r["runs"][corpus]
        for key, label in METRICS.items():
            gap = 100 * (row["plain"][key] - row["marked"][key])
            lines.append(
                f"| {name} | {label} | {row['marked'][key]:.4f} | {row['plain'][key]:.4f} "
                f"| {gap:+.2f} |"
            )
    v = r["verdict"]
    outcome = (
        "passes: `plain` is the offline default for new indexes"
        if v["plain_passes"]
        else "fails: `marked` stays the offline default"
    )
    lines += [
        "",
        f"- Largest drop {v['largest_drop_points']:.2f} points: the rule {outcome}; saved "
        "indexes keep the way they were built.",
    ]
    if v.get("gain_beyond_0.3"):
        lines.append("- At least one pair gained more than 0.3 points (not a failure).")
    return lines


def _speed_lines(s: dict[str, Any]) -> list[str]:
    engines = s.get("engines", {})
    lines = [
        "",
        f"Offline indexing, {s['documents']} SciFact documents, best of {s['rounds']} "
        "rounds taking turns (engine and dtype each row ran with in brackets; the default "
        "engine on this CPU, which multiplies bfloat16 natively, is PyTorch in bfloat16):",
        "",
        "| encode | docs/s | x PyLate encode (float32) | x PyLate encode (bfloat16) |",
        "|---|---|---|---|",
    ]
    for name, row in s["runs"].items():
        how = " [" + ", ".join(engines[name]) + "]" if name in engines else ""
        bf16 = row.get("ratio_to_pylate_bf16")
        lines.append(
            f"| {name}{how} | {row['docs_per_s']:.1f} | {row['ratio_to_pylate']:.2f} | "
            + (f"{bf16:.2f} |" if bf16 is not None else "- |")
        )
    plain = s["runs"].get("colrank plain, default engine (dense + ColBERT)")
    if plain:
        ok = plain["ratio_to_pylate"] >= 1.5
        lines += [
            "",
            f"- colrank `plain`, default engine (dense + ColBERT): "
            f"**{plain['ratio_to_pylate']:.2f}x** PyLate encode as PyLate runs by default "
            f"(float32; target >= 1.5x: {'**met**' if ok else '**not met**'}); "
            f"{plain['ratio_to_pylate_bf16']:.2f}x PyLate encode forced to bfloat16. The gain "
            "over PyLate's default is the number format (bfloat16 where the CPU multiplies it "
            "natively; its nDCG@10 is in the engines section); the one forward is why colrank "
            "gives the dense vector and the tokens at about the cost of PyLate's tokens alone "
            "in the same format.",
        ]
    return lines
