"""The report's side by side with PyLate's WARP engine (``benchmarks/peers.py --warp``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Provenance = Callable[[dict[str, Any]], str]


def acceptance_line(a: dict[str, Any]) -> str:
    """The acceptance line of one thread count, as printed and reported."""
    return (
        f"end-to-end colrank default / WARP best ({a['warp_best']}) = {a['ratio']:.2f}x at "
        f"{a['threads']} thread(s); nDCG@10 {a['colrank_ndcg@10']:.4f} vs "
        f"{a['warp_best_ndcg@10']:.4f}: colrank >= WARP "
        f"{'yes' if a['ndcg_at_least_warp'] else 'no'}; target <= 1.00x "
        f"{'met' if a['met'] else 'not met'}"
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def warp_section(r: dict[str, Any], provenance: Provenance) -> list[str]:
    """Rows at 1 and 2 threads, the build, the workaround and the acceptance lines."""
    lines = [
        "## Side by side with WARP (PyLate 1.6, xtr-warp-rs)",
        "",
        f"{r['queries']} SciFact test queries, one run. WARP is built from colrank's stored "
        "token embeddings (the same vectors) and its queries are encoded by the same ColBERT "
        "(PyLate `encode`); colrank encodes its own queries. *After encoding* is the search "
        "alone; *end to end* includes the query encoding. Each thread count sets PyTorch, "
        "FAISS, ONNX Runtime (when it is colrank's engine) and WARP's own `num_threads` "
        "alike. colrank's engine here: "
        + (" in ".join(r["colrank_engine"]) if r.get("colrank_engine") else "not recorded")
        + " (the offline default on this CPU).",
        "",
    ]
    if r.get("smoke"):
        lines += [
            f"**Smoke run**: colrank holds {r['documents']} documents and WARP "
            f"{r['warp_documents']}, not the whole corpus: nDCG@10 means nothing here.",
            "",
        ]
    lines += [
        "| method | threads | after encoding p50 / p95 ms | end to end p50 / p95 ms | nDCG@10 |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        a, e = row["after_encoding"], row["end_to_end"]
        lines.append(
            f"| {row['method']} | {row['threads']} | {a['p50_ms']:.1f} / {a['p95_ms']:.1f} | "
            f"{e['p50_ms']:.1f} / {e['p95_ms']:.1f} | {row['ndcg@10']:.4f} |"
        )
    lines.append("")
    warp = r.get("warp")
    if warp is None:
        lines.append(f"- WARP not run: {r.get('warp_skipped')}")
    else:
        auto = warp.get("auto_settings_first_query") or {}
        lines += [
            f"- WARP build from the stored tokens: {warp['build_seconds']:.0f} s at "
            f"{warp['build_threads']} threads, {_mb(warp['bytes'])} on disk; colrank's saved "
            f"index: {_mb(r['colrank_index_bytes'])}.",
            "- Workaround: at PyLate's defaults the WARP build crashes on SciFact (torch "
            "`quantile()` input too large on xtr-warp's 1M-token codec sample); this build "
            f"passes `codec_sample_max_tokens={warp['codec_sample_max_tokens']:,}` to xtr-warp's "
            "`create`, nothing else changed.",
            "- *PyLate defaults*: `n_ivf_probe=32`, `t_prime=100000`; *auto*: xtr-warp chooses "
            f"every setting (for the first query, {auto.get('query_tokens')} tokens: "
            f"nprobe {auto.get('nprobe')}, bound {auto.get('bound')}, t_prime "
            f"{auto.get('t_prime')}, max_candidates {auto.get('max_candidates')}). *Via "
            "PyLate* is `indexes.WARP.__call__`, which reloads two pickled id maps per call; "
            "*direct* is `XTRWarp.search` on the same loaded index.",
        ]
    lines += [f"- {acceptance_line(a)}" for a in r.get("acceptance", [])]
    lines += _where_the_time_goes(r["rows"])
    lines += ["", provenance(r), ""]
    return lines


def _where_the_time_goes(rows: list[dict[str, Any]]) -> list[str]:
    """colrank's end-to-end p50 split into query encoding and the search after it."""
    out = []
    for row in rows:
        if row["method"] != "colrank search (default)":
            continue
        total, after = row["end_to_end"]["p50_ms"], row["after_encoding"]["p50_ms"]
        out.append(
            f"- Where colrank's default search spends its time at {row['threads']} thread(s), "
            f"p50: {total:.1f} ms end to end, of which {total - after:.1f} ms is the query's "
            f"one transformer forward and {after:.1f} ms the search after it (recall, token "
            "fetch, MaxSim, fusion; the stages one by one are under *Encoding speed*)."
        )
    return out


__all__ = ["acceptance_line", "warp_section"]
