"""The report's section on the ColBERT-only first stage (benchmarks/muvera.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Provenance = Callable[[dict[str, Any]], str]
CORPORA = {"scifact": "SciFact test", "msmarco": "MS MARCO DL19"}


def muvera_section(
    recall: dict[str, Any] | None, timing: dict[str, Any] | None, provenance: Provenance
) -> list[str]:
    """Recall@100 of MUVERA against dense recall, nDCG@10 after MaxSim, and latency."""
    result = timing or recall
    if result is None:
        return []
    lines = [
        "## A ColBERT-only first stage (MUVERA)",
        "",
        '`first_stage="muvera"` recalls with MUVERA encodings of the stored ColBERT tokens '
        "(no dense model); the top 100 are then ranked by MaxSim. Recall@100 is the share of "
        "relevant documents in the first stage's top 100; nDCG@10 is after MaxSim over those "
        '100 (`rerank_fusion="none"`). Settings are `k_sim`-`d_proj`-`r_reps` '
        "(docs/search.md); build is the time to encode every stored document.",
        "",
        "| ColBERT | corpus | first stage | dimensions | recall@100 | nDCG@10 after MaxSim | build |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, entry in result["models"].items():
        for corpus, name in CORPORA.items():
            found = entry.get(corpus)
            if not found:
                continue
            dense = found["dense"]
            lines.append(
                f"| {model} | {name} | dense | - | {dense['recall@100']:.4f} | "
                f"{dense['ndcg@10 after MaxSim']:.4f} | - |"
            )
            for setting, row in found["muvera"].items():
                ndcg = row.get("ndcg@10 after MaxSim")
                lines.append(
                    f"| {model} | {name} | MUVERA {setting} | {row['dimension']} | "
                    f"{row['recall@100']:.4f} | {'-' if ndcg is None else f'{ndcg:.4f}'} | "
                    f"{row['build_seconds']:.1f} s |"
                )
    if "finetuned" not in result["models"]:
        lines += [
            "",
            "The ColBERT fine-tuned on SciFact train: not measured yet "
            "(`python benchmarks/muvera.py --models finetuned`).",
        ]
    lines += [*_latency(timing), "", provenance(result), ""]
    if timing is not None and recall is not None and recall is not timing:
        lines += [provenance(recall), ""]
    return lines


def _latency(timing: dict[str, Any] | None) -> list[str]:
    if timing is None:
        return ["", "Latency: not measured yet (`python benchmarks/muvera.py --timing`)."]
    lines = [
        "",
        "Per query, one at a time (p50 / p95 ms): the first stage alone (FAISS dense search, "
        "or MUVERA query encoding + FAISS) and the whole search (encoding included).",
        "",
        "| ColBERT | corpus | first stage | stage p50 | stage p95 | search p50 | search p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, entry in timing["models"].items():
        for corpus, name in CORPORA.items():
            found = entry.get(corpus)
            if not found:
                continue
            default = next(iter(found["muvera"].values()))
            for label, row in (("dense", found["dense"]), ("MUVERA", default)):
                if "latency" not in row:
                    continue
                stage, search = row["latency"]["stage"], row["latency"]["search"]
                lines.append(
                    f"| {model} | {name} | {label} | {stage['p50_ms']:.2f} | "
                    f"{stage['p95_ms']:.2f} | {search['p50_ms']:.2f} | {search['p95_ms']:.2f} |"
                )
    return lines


__all__ = ["muvera_section"]
