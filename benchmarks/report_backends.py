"""The report's sections on storage backends (rendered by make_report.py from JSON).

- the storage-backend refactor: quality and latency before/after, side by side;
- the PostgreSQL backend: parity with the local backend on SciFact and MS MARCO, and the
  synthetic 10k / 100k scale run (ingest, bytes per token, per-stage latency, HNSW recall).
"""

from __future__ import annotations

from typing import Any

STAGES = ("faiss", "bm25", "hybrid_fusion", "token_fetch", "maxsim", "docstore", "total")


def refactor_section(
    evaluation: dict[str, Any], speed: dict[str, Any] | None, provenance
) -> list[str]:
    """SciFact / MS MARCO nDCG after the refactor, and default-search latency before/after."""
    lines = [
        "## Storage backend and pipeline refactor: nothing moved",
        "",
        "The engine was split into a storage backend, a search pipeline and a facade. The same",
        "saved indexes, evaluated through `ColrankIndex.search` after the split:",
        "",
        "| corpus | default nDCG@10 | dense nDCG@10 |",
        "|---|---|---|",
    ]
    for corpus, report in evaluation["runs"]["offline"].items():
        lines.append(
            f"| {corpus} | {report['default']['ndcg@10']:.4f} | {report['dense']['ndcg@10']:.4f} |"
        )
    lines += [
        "",
        "Identical to the figures above (SciFact 0.7255 / 0.6451, MS MARCO 0.8076 / 0.7977).",
        "",
        provenance(evaluation),
        "",
    ]
    if speed:
        p50 = speed["p50_ms"]
        lines += [
            f"Latency: `colrank bench` of the commit before the split and of this one in "
            f"{speed['rounds']} alternating rounds, same index, {speed['queries']} SciFact "
            "queries; p50 ms per stage, median over rounds.",
            "",
            "| stage | before (default) | after (default) | before (core) | after (core) |",
            "|---|---|---|---|---|",
        ]
        stages = sorted(set(p50["before"]["default_search"]) | set(p50["after"]["default_search"]))
        for stage in ["total", *[s for s in stages if s != "total"]]:
            cells = [
                p50[side][search].get(stage)
                for search in ("default_search", "core_search")
                for side in ("before", "after")
            ]
            order = [cells[0], cells[1], cells[2], cells[3]]
            lines.append(
                f"| {stage} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in order) + " |"
            )
        lines += ["", provenance(speed), ""]
    return lines


def server_section(
    quality: dict[str, Any] | None, scale: dict[str, Any] | None, provenance
) -> list[str]:
    """PostgreSQL + pgvector: parity with the local backend, then scale."""
    lines = [
        "## PostgreSQL + pgvector backend",
        "",
        "Acceptance: same top-10 as the local backend with exact search, nDCG@10 within 0.5 "
        "with HNSW (met: identical), and at 100k documents a query path without encoding of "
        "at most 25 ms p50 on this 2-core machine (see the scale table).",
        "",
    ]
    if quality:
        lines += [
            "Same saved index copied into a real PostgreSQL 18.6 + pgvector 0.8.6 server (no",
            "re-encoding), every test query run on both backends:",
            "",
            "| corpus | backend | default nDCG@10 | dense nDCG@10 | same top-10 (default) | "
            "same top-10 (dense) | max score diff |",
            "|---|---|---|---|---|---|---|",
        ]
        for corpus, rows in quality["corpora"].items():
            for label, row in rows.items():
                same_d = row.get("default_same_top10", "-")
                same_n = row.get("dense_same_top10", "-")
                diff = row.get("default_max_score_diff")
                lines.append(
                    f"| {corpus} | {label} | {row['default_ndcg@10']:.4f} | "
                    f"{row['dense_ndcg@10']:.4f} | {same_d} | {same_n} | "
                    f"{'-' if diff is None else f'{diff:.1e}'} |"
                )
        lines += [
            "",
            "Lexical recall in server mode was exact BM25 computed in SQL over a postings table",
            "with the local tokenizer and formula, so hybrid recall equals the local one (above:",
            "identical nDCG). It now reads each term's postings best-first and scores the",
            "candidates exactly (section 'Past one machine'). PostgreSQL's own full-text",
            "`ts_rank` was not adopted: its scores have no fixed scale, which the calibrated",
            "fusion needs (BM25 as a share of the query's largest possible score).",
            "",
            provenance(quality),
            "",
        ]
    if scale:
        lines += [
            "### Scale: synthetic collections, both backends in one run",
            "",
            "384-d dense vectors, 96-d float16 tokens (60-140 per document), Zipf words for BM25;",
            "query path without encoding: hybrid recall of 100, token fetch, MaxSim, final",
            "ranking with the document lookup (p50 / p95 ms). PostgreSQL: HNSW over halfvec",
            "(m 16, ef_construction 64, ef_search 200), loopback, timed after `VACUUM ANALYZE`",
            "(what autovacuum does to a collection in service) and, last column, right after",
            "the bulk load (cold pages). Local: exact FAISS (flat).",
            "",
        ]
        for size, entry in scale["sizes"].items():
            q = entry["query_ms"]
            rate = entry["ingest_docs_per_s"]
            lines += [
                f"**{int(size):,} documents** ({entry['tokens']:,} tokens): ingest "
                f"{rate['local']:.0f} docs/s local, {rate['postgres']:.0f} docs/s PostgreSQL; "
                f"{entry['disk']['bytes_per_token_column']:.0f} B per token in the token column, "
                f"{entry['disk']['bytes_per_token_all']:.0f} B per token for all tables and "
                f"indexes; HNSW recall@100 against exact search "
                f"{entry['hnsw_recall@100']:.3f}.",
                "",
                "| stage | local p50 | local p95 | PostgreSQL p50 | PostgreSQL p95 | "
                "PostgreSQL right after the load, p50 |",
                "|---|---|---|---|---|---|",
            ]
            fresh = entry.get("postgres_right_after_load_ms", {})
            for stage in STAGES:
                a, b = q["local"].get(stage), q["postgres"].get(stage)
                if a is None or b is None:
                    continue
                c = fresh.get(stage)
                lines.append(
                    f"| {stage} | {a['p50_ms']:.2f} | {a['p95_ms']:.2f} | "
                    f"{b['p50_ms']:.2f} | {b['p95_ms']:.2f} | "
                    f"{'-' if c is None else format(c['p50_ms'], '.2f')} |"
                )
            codecs = [c for c in ("int8", "pq32") if c in entry]
            if codecs:
                lines += [
                    "",
                    f"Token codec on the server, {int(size):,} documents (same queries; top-10 "
                    "kept: share of float16's MaxSim top-10 over the same 100 candidates):",
                    "",
                    "| codec | B per token (column) | token fetch p50 | MaxSim p50 | total p50 | "
                    "top-10 kept |",
                    "|---|---|---|---|---|---|",
                    f"| float16 | {entry['disk']['bytes_per_token_column']:.0f} | "
                    f"{q['postgres']['token_fetch']['p50_ms']:.2f} | "
                    f"{q['postgres']['maxsim']['p50_ms']:.2f} | "
                    f"{q['postgres']['total']['p50_ms']:.2f} | 1.00 |",
                ]
                for codec in codecs:
                    c = entry[codec]
                    lines.append(
                        f"| {codec} | {c['disk']['bytes_per_token_column']:.0f} | "
                        f"{c['query_ms']['token_fetch']['p50_ms']:.2f} | "
                        f"{c['query_ms']['maxsim']['p50_ms']:.2f} | "
                        f"{c['query_ms']['total']['p50_ms']:.2f} | "
                        f"{c['maxsim_rank_agreement']:.2f} |"
                    )
                lines += [
                    "",
                    "Chosen server default: **int8**. It halves float16's bytes on disk and on "
                    "the wire, fetches faster, keeps 99% of the MaxSim top-10 here and gave the "
                    "same SciFact nDCG@10 as float16 (0.6753, 'Storage per token vs quality' "
                    "above). pq32 moves a sixth of the bytes but keeps only about three quarters "
                    "of the top-10 on these synthetic tokens and lost about 1 nDCG@10 point on "
                    'SciFact; it stays an option (`codec="pq32"`, trained at creation). The '
                    "PostgreSQL columns of the scale tables were measured with float16 tokens, "
                    "the slower of the two.",
                ]
            lines.append("")
        lines += [
            "At 100k documents the PostgreSQL query path (float16 tokens, after autovacuum's "
            "`VACUUM ANALYZE`) is within the 25 ms p50 target, just; BM25 over the postings is "
            "its largest stage, then the token fetch. HNSW recall@100 on these synthetic, "
            "weakly clustered vectors is lower at 100k than at 10k; raise `ef_search` "
            "(`ColrankIndex.open(..., ef_search=400)`) where recall of the first stage matters "
            "more than a few milliseconds. On the real corpora above, HNSW changed no nDCG.",
            "",
            provenance(scale),
            "",
        ]
    return lines


__all__ = ["refactor_section", "server_section"]
