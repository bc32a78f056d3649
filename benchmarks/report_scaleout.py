"""Report section: past one machine (local, one PostgreSQL server, a spread collection)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from report_backends import STAGES

SIDES = ("local", "one server", "spread (3 shards)")


def _stage_table(entry: dict[str, Any]) -> list[str]:
    q = entry["query_ms"]
    head = " | ".join(f"{side} p50 | {side} p95" for side in SIDES)
    lines = [f"| stage | {head} |", "|---|" + "---|---|" * len(SIDES)]
    for stage in STAGES:
        cells = []
        for side in SIDES:
            got = q.get(side, {}).get(stage)
            cells += ["-", "-"] if got is None else [f"{got['p50_ms']:.2f}", f"{got['p95_ms']:.2f}"]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return lines


def scaleout_section(
    scale: dict[str, Any] | None,
    shaped: dict[str, Any] | None,
    provenance: Callable[[dict[str, Any]], str],
) -> list[str]:
    """Per-stage latency by size and layout, ingest, HNSW recall, BM25 growth."""
    lines = ["## Past one machine", ""]
    if scale:
        sizes = scale["sizes"]
        lines += [
            "The same synthetic collections and queries in the local backend, one PostgreSQL",
            "server, and a collection spread over three servers (a coordinator and three",
            "shards, `postgres_fdw` partitions), in one run: 384-d clustered dense vectors,",
            "96-d float16 tokens (60-140 per document), Zipf words for BM25; the query path",
            "without encoding (hybrid recall of 100, token fetch, MaxSim, final ranking with",
            "the document lookup), p50 / p95 ms, PostgreSQL after `VACUUM ANALYZE`. All five",
            "servers run on this machine's two cores: the spread column shows what the",
            "mechanism costs, not what more machines gain.",
            "",
        ]
        for size, entry in sizes.items():
            rates = entry["ingest_docs_per_s"]
            recall = entry["hnsw_recall@100"]
            lines += [
                f"**{int(size):,} documents**: ingest "
                + ", ".join(f"{side} {rates[side]:.0f} docs/s" for side in SIDES if side in rates)
                + "; HNSW recall@100 against exact search (one server) "
                + ", ".join(f"ef_search {ef}: {r:.3f}" for ef, r in recall.items())
                + f"; spread collection (ef_search 200 per shard): "
                f"{entry['spread_recall@100']:.3f}; BM25 top-100 kept against exhaustive BM25: "
                f"{entry['bm25']['top100_overlap']:.3f} (exhaustive BM25 p50 "
                f"{entry['bm25']['exhaustive_p50_ms']:.2f} ms); filtered dense searches that "
                "filled 100: "
                + ", ".join(f"{side} {v:.0%}" for side, v in entry["filtered_fills_100"].items())
                + ".",
                "",
                *_stage_table(entry),
                "",
            ]
        keys = sorted(sizes, key=int)
        if len(keys) > 1:
            small, large = sizes[keys[0]], sizes[keys[-1]]
            factor = int(keys[-1]) / int(keys[0])
            for side in ("one server", "spread (3 shards)"):
                a = small["query_ms"][side]
                b = large["query_ms"][side]
                lines.append(
                    f"- {side}, {int(keys[0]):,} → {int(keys[-1]):,} documents ({factor:.0f}x): "
                    f"BM25 stage p50 x{b['bm25']['p50_ms'] / a['bm25']['p50_ms']:.2f}, "
                    f"total p50 x{b['total']['p50_ms'] / a['total']['p50_ms']:.2f}."
                )
            lines.append("")
        lines += [
            "Not measured in this run: 1M documents (the target: the server's total p50 at 1M "
            "at most 2x its p50 at 100k, with the BM25 stage flat once `bm25_depth` binds). "
            "Up to 100k most query terms have fewer postings than the depth (5000), so BM25 "
            "still reads them all and grows with the collection here. The one-server 100k "
            "totals are higher than in the earlier two-backend scale run above (same corpus "
            "and queries); this run holds five servers' copies beside the local one, and the "
            "token fetch's p95 points at reads from disk, but the cause was not isolated. "
            "The spread collection's dense stage pays for `postgres_fdw` evaluating the "
            "distance on the coordinator: each shard ships its top-100 vectors as text.",
            "",
            provenance(scale),
            "",
        ]
    if shaped:
        lines += [
            "### HNSW recall on real-shaped vectors",
            "",
            f"The offline MiniLM's embeddings of SciFact's {shaped['base_vectors']:,} abstracts, "
            f"each replicated with Gaussian noise (norm about {shaped['noise']}, renormalised) "
            "up to N vectors; SciFact test claims as queries; the collection's dense column and "
            "HNSW index (halfvec, m 16, ef_construction 64), built after a COPY; recall@100 "
            "against exact search.",
            "",
            "| vectors | m / ef_construction | COPY s | HNSW build s | "
            + " | ".join(f"ef {ef} recall / p50 ms" for ef in _efs(shaped))
            + " |",
            "|---|---|---|---|" + "---|" * len(_efs(shaped)),
        ]
        for entry in shaped["sizes"].values():
            cells = [
                f"{entry['recall@100'][ef]:.3f} / {entry['p50_ms'][ef]:.2f}" for ef in _efs(shaped)
            ]
            lines.append(
                f"| {entry['vectors']:,} | {entry.get('m', 16)} / "
                f"{entry.get('ef_construction', 64)} | {entry['copy_s']:.0f} | "
                f"{entry['hnsw_build_s']:.0f} | " + " | ".join(cells) + " |"
            )
        lines += [
            "",
            "Not met with the default graph: recall@100 >= 0.95 at 1M. With the collection's HNSW graph (m 16, "
            "ef_construction 64) recall falls with size at every ef_search, and even "
            "ef_search 1000 (pgvector's largest) stays below 0.95 at 1M. A denser graph "
            "(m 32, ef_construction 128) raises it at every size and reaches it at 1M with "
            "ef_search 1000 (see the table), for a build about three times slower. Replicating "
            "5,183 vectors to 1M makes clusters of about 190 near-copies per abstract, so the "
            "exact top-100 of a query is mostly copies of one or two abstracts, a hard case "
            "for a graph index. The defaults (m 16, ef_construction 64, ef_search 200) were "
            "not changed in this session: a denser graph slows every insert, and that cost "
            "was not measured on the collection's write path.",
            "",
            provenance(shaped),
            "",
        ]
    return lines


def _efs(shaped: dict[str, Any]) -> list[str]:
    first = next(iter(shaped["sizes"].values()))
    return list(first["recall@100"])


__all__ = ["scaleout_section"]
