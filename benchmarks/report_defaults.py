"""The report's section on the default search (rendered by make_report.py from JSON)."""

from __future__ import annotations

from typing import Any

HEADLINE = (
    "dense",
    "bm25",
    "hybrid (rrf)",
    "old default: hybrid>interp(0.5)",
    "dense>colbert@100",
)


def _row(label: str, values: dict[str, float], keys: list[str], chosen: str) -> str:
    name = f"**{label}** (chosen)" if label == chosen else label
    return f"| {name} | " + " | ".join(f"{values[k]:.4f}" for k in keys) + " |"


def designs_section(
    designs: dict[str, Any],
    evaluation: dict[str, Any] | None,
    provenance,
    tuned: dict[str, Any] | None = None,
    speed: dict[str, Any] | None = None,
) -> list[str]:
    """Designs x corpora, the selection rule, the acceptance run and the threshold study."""
    table = designs["ndcg@10"]
    keys = list(next(iter(table.values())))
    selection = designs["selection"]
    chosen = selection["chosen"]
    lines = [
        "## The default search: designs compared on three query sets",
        "",
        "Every design ranks the same per-query candidates and stage scores "
        "(`benchmarks/default_search_features.py`: dense cosine, BM25, and ColBERT MaxSim per "
        "query token over dense top-200 + BM25 top-100). `linear[pool] b= c=` is the "
        "calibrated score, (1-b-c) x cosine + b x BM25/query max + c x MaxSim per query "
        "token, over `union` (dense top-100 + BM25 top-100), `trunc` (the union cut to 100 "
        "by the first-stage part: the shipped pipeline, MaxSim on 100) or `dense` (dense "
        "top-100); `tokens=` leaves out [MASK] expansion (`nomask`) or all special tokens "
        "(`words`); `wrrf` is weighted RRF; `minmax` the same weights on per-query min-max "
        "scores; `adaptive` scales the weights per query by the stage's top-10 agreement "
        "with dense (`agree`) or BM25's best matched share (`match`). nDCG@10.",
        "",
        "**Selection, on SciFact train only:** " + " ".join(selection["rule"].split()),
        "",
        "| design | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for label in (*HEADLINE, chosen):
        lines.append(_row(label, table[label], keys, chosen))
    tied = ", ".join(
        f"`{t['design']}` (bound {t['lcb']:.4f}, {100 * t['worse']:.1f}% of queries worse)"
        for t in selection["tied"]
    )
    lines += [
        "",
        f"Tied on the lower bound: {tied}.",
        "",
        "<details><summary>All designs</summary>",
        "",
        "| design | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        *[_row(label, values, keys, chosen) for label, values in table.items()],
        "",
        "</details>",
        "",
        provenance(designs),
        "",
    ]
    if evaluation:
        lines += _evaluation(evaluation, provenance)
    if tuned:
        lines += _tuned(tuned, provenance)
    if "threshold" in designs:
        lines += _threshold(designs["threshold"])
    if speed:
        lines += _speed(speed, provenance)
    return lines


def _speed(r: dict[str, Any], provenance) -> list[str]:
    """The earlier and the calibrated default, timed in alternating rounds."""
    p50 = r["p50_ms"]
    stages = sorted(set(p50["before"]["default_search"]) | set(p50["after"]["default_search"]))
    lines = [
        "### Speed: the earlier default and the calibrated one, side by side",
        "",
        f"`colrank bench` of both versions in {r['rounds']} alternating rounds on the same "
        f"index and {r['queries']} SciFact queries; p50 ms per stage, median over rounds.",
        "",
        "| stage | earlier default | calibrated default |",
        "|---|---|---|",
    ]
    for stage in ["total", *[s for s in stages if s != "total"]]:
        cells = [p50[side]["default_search"].get(stage) for side in ("before", "after")]
        lines.append(
            f"| {stage} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |"
        )
    return [*lines, "", provenance(r), ""]


def _evaluation(r: dict[str, Any], provenance) -> list[str]:
    lines = [
        "### Acceptance: `search()` defaults against dense recall, one run",
        "",
        "The `default` run is `ColrankIndex.search` with its defaults and 100 candidates, as "
        "`colrank eval` prints it.",
        "",
        "| ColBERT | corpus | dense | hybrid recall | default | default - dense |",
        "|---|---|---|---|---|---|",
    ]
    for label, corpora in r["runs"].items():
        for corpus, report in corpora.items():
            d, h, x = (report[k]["ndcg@10"] for k in ("dense", "hybrid", "default"))
            lines.append(
                f"| {label} | {corpus} | {d:.4f} | {h:.4f} | {x:.4f} | {100 * (x - d):+.2f} |"
            )
    return [*lines, "", provenance(r), ""]


def _tuned(r: dict[str, Any], provenance) -> list[str]:
    """ColBERT's weight for a trained checkpoint, chosen on the fine-tuning dev queries."""
    table = r["ndcg@10"]
    keys = list(next(iter(table.values())))
    lines = [
        "### ColBERT's weight for a trained checkpoint",
        "",
        "With the ColBERT fine-tuned on SciFact train (`colrank finetune`), BM25's share of "
        "the first stage fixed, and ColBERT's share `c` swept. Chosen on the fine-tuning "
        "run's *dev* queries (train queries it did not train on) by the same rule; the "
        "other columns are checks.",
        "",
        "| design | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        *[_row(label, values, keys, r["selection"]["chosen"]) for label, values in table.items()],
    ]
    return [*lines, "", provenance(r), ""]


def _threshold(t: dict[str, Any]) -> list[str]:
    pct = t["percentiles (5, 50, 95)"]
    lines = [
        "### One threshold for answerable and unanswerable questions",
        "",
        "Top-hit default score of each corpus's own questions (answerable) and of the other "
        "corpus's questions (not answerable from it). The threshold is chosen on SciFact "
        "(its train questions vs MS MARCO's) and checked on MS MARCO.",
        "",
        "| questions | 5th pct | median | 95th pct |",
        "|---|---|---|---|",
        *[f"| {k} | " + " | ".join(f"{v:.3f}" for v in vals) + " |" for k, vals in pct.items()],
        "",
        f"- Threshold {t['threshold (chosen on scifact)']:.3f} (balanced accuracy on SciFact "
        f"{t['scifact balanced accuracy']:.3f}); on MS MARCO it keeps "
        f"{100 * t['msmarco: answerable kept']:.0f}% of the answerable questions' top hits "
        f"and rejects {100 * t['msmarco: unanswerable rejected']:.0f}% of the unanswerable.",
        "",
    ]
    return lines
