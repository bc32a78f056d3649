"""PyLate's WARP engine (``xtr-warp-rs``) beside colrank: build, search settings, timing.

Used by ``benchmarks/peers.py --warp``. WARP is built from the colrank index's stored
token embeddings (decoded from the store, no re-encoding), so both engines score the same
vectors; WARP's queries are encoded by the same ColBERT model (PyLate ``encode``).

The build goes through PyLate's ``indexes.WARP`` with one change: its ``add_documents``
calls ``XTRWarp.create`` with xtr-warp's default ``codec_sample_max_tokens=1_000_000``,
and on SciFact's ~1M stored tokens the residual codec's torch ``quantile()`` fails (input
too large). The build passes ``codec_sample_max_tokens=40_000`` instead (the codec is
trained on a 40,000-token sample); nothing else differs from PyLate's defaults.

Search settings, each at 1 and 2 threads:

- *PyLate defaults*: what ``indexes.WARP()`` sets (``n_ivf_probe=32``, ``t_prime=100_000``,
  the rest chosen by xtr-warp);
- *auto*: every setting ``None``, so xtr-warp picks all of them itself
  (``xtr_warp.hyperparams.optimize`` from the index density and the query length);
- *via PyLate*: ``indexes.WARP.__call__`` (it reloads two pickled id maps on every call);
  *direct*: ``XTRWarp.search`` on the same loaded index, ids mapped from a list.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import percentiles

from colrank import ColrankIndex
from colrank.eval.metrics import ndcg_at_k

ENCODE_STAGES = ("dense_encode", "colbert_encode", "encode")
"""The ``timings`` keys of query encoding in a colrank search (``colrank/pipeline.py``)."""
CODEC_SAMPLE_TOKENS = 40_000
"""The workaround: tokens of xtr-warp's residual codec sample (its default 1M crashes)."""
PYLATE_DEFAULTS: dict[str, Any] = {"n_ivf_probe": 32, "t_prime": 100_000}
"""Search settings PyLate 1.6's ``indexes.WARP`` sets (the rest it leaves to xtr-warp)."""
AUTO: dict[str, Any] = {"n_ivf_probe": None, "t_prime": None}
"""Nothing set: xtr-warp chooses every search setting itself."""
SETTINGS = {"PyLate defaults (nprobe 32)": PYLATE_DEFAULTS, "xtr-warp auto settings": AUTO}

# A step runs one query and returns the ranked ids and the seconds spent encoding it.
Step = Callable[[str], tuple[list[str], float]]


def warp_missing() -> str | None:
    """Why WARP cannot run here (``None`` when ``xtr-warp-rs`` imports)."""
    try:
        import xtr_warp.search  # noqa: F401
        from pylate.indexes import WARP  # noqa: F401
    except ImportError as exc:
        return f"xtr-warp-rs is not usable here ({exc}): the WARP rows are skipped"
    return None


def folder_bytes(path: Path) -> int:
    """Bytes of every file below ``path`` (apparent sizes)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def index_bytes(path: Path) -> int:
    """Bytes of a saved colrank index's live snapshot (the one ``CURRENT`` names)."""
    path = Path(path)
    current = path / "CURRENT"
    return folder_bytes(path / current.read_text().strip() if current.is_file() else path)


def stored_tokens(index: ColrankIndex, ids: Sequence[str]) -> list[np.ndarray]:
    """The index's stored token embeddings of ``ids`` (decoded, float32)."""
    with index.backend.read() as view:
        iids = view.iids_for(ids)
        tokens = view.token_embeddings([iids[i] for i in ids])
    return [t.astype(np.float32, copy=False) for t in tokens]


@dataclass
class WarpBuild:
    """A WARP index built from stored tokens, with what its build cost."""

    folder: Path
    ids: list[str]
    seconds: float
    bytes: int
    wrapper: Any  # pylate.indexes.WARP (its ``warp`` is the loaded xtr_warp XTRWarp)


def build_warp(index: ColrankIndex, ids: list[str], folder: Path) -> WarpBuild:
    """Build PyLate's WARP over ``ids``'s stored tokens (with the codec-sample workaround)."""
    from pylate import indexes

    tokens = [torch.from_numpy(t) for t in stored_tokens(index, ids)]
    start = time.perf_counter()
    wrapper = indexes.WARP(  # the CPU engine, also where CUDA is present
        index_folder=str(folder),
        index_name="warp",
        override=True,
        show_progress=False,
        device="cpu",
    )
    create = wrapper.warp.create
    wrapper.warp.create = functools.partial(create, codec_sample_max_tokens=CODEC_SAMPLE_TOKENS)
    wrapper.add_documents(documents_ids=ids, documents_embeddings=tokens)
    seconds = time.perf_counter() - start
    return WarpBuild(folder, ids, seconds, folder_bytes(folder), wrapper)


def warp_steps(build: WarpBuild, model: Any, threads: int) -> dict[str, Step]:
    """One timed step per WARP row (``via PyLate`` / ``direct`` x settings) at ``threads``."""
    from pylate import indexes

    def encoded(text: str) -> tuple[list[np.ndarray], float]:
        start = time.perf_counter()
        q = model.encode([text], is_query=True, show_progress_bar=False)
        return q, time.perf_counter() - start

    steps: dict[str, Step] = {}
    for label, setting in SETTINGS.items():
        wrapper = indexes.WARP(  # a second wrapper on the built folder, as a user loads it
            index_folder=str(build.folder),
            index_name="warp",
            show_progress=False,
            device="cpu",
            num_threads=threads,
            **setting,
        )

        def via_pylate(text: str, wrapper=wrapper) -> tuple[list[str], float]:
            q, seconds = encoded(text)
            return [r["id"] for r in wrapper(q, k=10)[0]], seconds

        def direct(text: str, setting=setting) -> tuple[list[str], float]:
            q, seconds = encoded(text)
            found = build.wrapper.warp.search(
                torch.from_numpy(q[0]),
                top_k=10,
                num_threads=threads,
                nprobe=setting["n_ivf_probe"],
                t_prime=setting["t_prime"],
                show_progress=False,
            )
            return [build.ids[pid] for pid, _ in found[0]], seconds

        steps[f"WARP via PyLate, {label}"] = via_pylate
        steps[f"WARP direct, {label}"] = direct
    return steps


def auto_settings(build: WarpBuild, model: Any, text: str) -> dict[str, Any]:
    """What xtr-warp's auto settings are for ``text`` (they depend on its token count)."""
    q = torch.from_numpy(model.encode([text], is_query=True, show_progress_bar=False)[0])
    chosen = build.wrapper.warp.optimize_hyperparams(10, q.unsqueeze(0))
    names = ("bound", "nprobe", "centroid_score_threshold", "max_candidates", "t_prime")
    return {"query_tokens": int(q.shape[0]), **dict(zip(names, chosen, strict=True))}


def colrank_steps(index: ColrankIndex) -> dict[str, Step]:
    """colrank's default search and its core dense -> ColBERT rerank, as timed steps."""

    def step(**search: Any) -> Step:
        def run(text: str) -> tuple[list[str], float]:
            timings: dict[str, float] = {}
            hits = index.search(text, k=10, timings=timings, **search)
            return [h.id for h in hits], sum(timings.get(s, 0.0) for s in ENCODE_STAGES)

        return run

    return {
        "colrank search (default)": step(),
        "colrank dense -> ColBERT": step(candidates=100, first_stage="dense", rerank_fusion="none"),
    }


def measure(
    name: str, threads: int, queries: dict[str, str], qrels: dict, step: Step
) -> dict[str, Any]:
    """Time ``step`` on every query (after one warm-up): end to end and after encoding."""
    step(next(iter(queries.values())))
    total, after, ndcg = [], [], []
    for qid, text in queries.items():
        start = time.perf_counter()
        ranked, encoding = step(text)
        seconds = time.perf_counter() - start
        total.append(seconds)
        after.append(seconds - encoding)
        ndcg.append(ndcg_at_k({qid: ranked}, {qid: qrels.get(qid, {})}, 10))
    row = {
        "method": name,
        "threads": threads,
        "end_to_end": percentiles(total),
        "after_encoding": percentiles(after),
        "ndcg@10": float(np.mean(ndcg)),
        "per_query": ndcg,
    }
    e, a = row["end_to_end"], row["after_encoding"]
    print(
        f"{name:<46} {threads} thr  after enc p50 {a['p50_ms']:6.1f} p95 {a['p95_ms']:6.1f}  "
        f"end to end p50 {e['p50_ms']:6.1f} p95 {e['p95_ms']:6.1f} ms  nDCG@10 {row['ndcg@10']:.4f}"
    )
    return row


def acceptance(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per thread count: colrank default end to end / WARP's best end to end, and nDCG."""
    out = []
    for threads in sorted({r["threads"] for r in rows}):
        at = [r for r in rows if r["threads"] == threads]
        ours = next((r for r in at if r["method"] == "colrank search (default)"), None)
        warp = [r for r in at if r["method"].startswith("WARP")]
        if ours is None or not warp:
            continue
        best = min(warp, key=lambda r: r["end_to_end"]["p50_ms"])
        ratio = ours["end_to_end"]["p50_ms"] / best["end_to_end"]["p50_ms"]
        quality = ours["ndcg@10"] >= best["ndcg@10"]
        out.append(
            {
                "threads": threads,
                "colrank_end_to_end_p50_ms": ours["end_to_end"]["p50_ms"],
                "warp_best": best["method"],
                "warp_best_end_to_end_p50_ms": best["end_to_end"]["p50_ms"],
                "ratio": ratio,
                "colrank_ndcg@10": ours["ndcg@10"],
                "warp_best_ndcg@10": best["ndcg@10"],
                "warp_max_ndcg@10": max(r["ndcg@10"] for r in warp),
                "ndcg_at_least_warp": quality,
                "met": ratio <= 1.0 and quality,
            }
        )
    return out


__all__ = [
    "acceptance",
    "auto_settings",
    "build_warp",
    "colrank_steps",
    "index_bytes",
    "measure",
    "stored_tokens",
    "warp_missing",
    "warp_steps",
]
