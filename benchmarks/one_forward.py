"""One transformer forward per text for the offline stand-in: does quality hold? (issue 27)

The offline stand-in ColBERT is MiniLM with an identity projection, never trained as a
ColBERT, so its query/document markers and its [MASK] query expansion carry no learned
meaning. ``ModelConfig.stand_in_inputs="plain"`` feeds it the text exactly as the dense
model reads it (no marker, no expansion): the token vectors then come from the same
forward as the dense vector, one forward per text at indexing and at query time.
``"marked"`` is the stand-in as it was (PyLate's ColBERT input: a second forward).

For each shared corpus (SciFact test, MS MARCO DL19; the whole corpus of each), one
index per way is built with the offline config (default engine) and evaluated: nDCG@10
of the **default search** and of **dense -> ColBERT** (``dense>colbert@100``); dense
recall alone is reported as a check (both ways must give the same dense vectors).

Decision rule, fixed before the run (committed before any number was measured):
``plain`` becomes the offline default for new indexes only if, on BOTH corpora, the
nDCG@10 of the default search AND of dense -> ColBERT each stays within 0.3 points
(0.003) of ``marked``: no pair may drop by more than 0.003 (a gain does not fail the
rule; every signed gap is reported, and a gain beyond 0.3 points is flagged). Otherwise
``marked`` stays the default. Saved indexes keep the way they were built either way.

    python benchmarks/one_forward.py                  # the quality rule (an hour on 2 busy cores)
    python benchmarks/one_forward.py --speed          # and offline indexing docs/s side by side
    python benchmarks/one_forward.py --skip-quality   # docs/s alone, the quality results kept

``--speed`` adds, in the same run, offline document encoding on SciFact documents
(``--speed-docs``, default 1000; methods taking turns, best of ``--rounds``): colrank
``plain`` (dense + ColBERT, one forward) with the default engine and with ONNX Runtime
fp32, colrank ``marked`` (dense + ColBERT), and PyLate ``encode`` (ColBERT tokens only)
of the same MiniLM ColBERT in float32 (PyLate's default on CPU) and in bfloat16. The
ratio of each to PyLate float32 is what issue 27's acceptance line reads (``plain`` with
the default engine >= 1.5x); the ratio to PyLate bfloat16 says how much of that is the
one forward rather than the number format. The default engine on a CPU with native
bfloat16 is PyTorch in bfloat16 (``colrank.models.pair.resolve_engine``).
``--skip-quality`` runs the speed part alone (it then keeps the last quality results).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from common import RESULTS, ROOT, write_result

from colrank import ColrankConfig, ColrankIndex
from colrank.config import OFFLINE_MODEL
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index
from colrank.models.encoders import ColbertEncoder
from colrank.models.pair import EncoderPair

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")
WAYS = ("marked", "plain")
RULED = ("default_ndcg@10", "dense>colbert_ndcg@10")
LIMIT = 0.003  # 0.3 nDCG@10 points


def offline(way: str, **runtime: Any) -> ColrankConfig:
    """The offline config with the stand-in reading its inputs ``way``."""
    config = ColrankConfig.offline(models={"stand_in_inputs": way})
    return config.model_copy(
        update={"runtime": config.runtime.model_copy(update={"show_progress": False, **runtime})}
    )


def quality(corpus: str, way: str) -> dict[str, Any]:
    """nDCG@10 of the default search, dense -> ColBERT and dense, for one way on one corpus."""
    data = load_beir(DATA / corpus, "test")
    index = ColrankIndex(offline(way))
    start = time.perf_counter()
    index.add(data.texts, data.metadatas, data.ids)
    seconds = time.perf_counter() - start
    report = evaluate_index(index, data, (100,), first_stages=("dense",), progress=False)
    row = {
        "default_ndcg@10": report["default"]["ndcg@10"],
        "dense>colbert_ndcg@10": report["dense>colbert@100"]["ndcg@10"],
        "dense_ndcg@10": report["dense"]["ndcg@10"],
        "documents": len(index),
        "queries": len(data.queries),
        "engine": index.encoders.engine,
        "index_seconds": seconds,
    }
    index.close()
    return row


def verdict(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The rule of the module docstring applied to measured runs."""
    gaps = {
        corpus: {
            key: runs[corpus]["plain"][key] - runs[corpus]["marked"][key]
            for key in (*RULED, "dense_ndcg@10")
        }
        for corpus in CORPORA
    }
    ruled = [gaps[c][k] for c in CORPORA for k in RULED]
    return {
        "signed_gaps_points": {c: {k: 100 * v for k, v in g.items()} for c, g in gaps.items()},
        "largest_drop_points": 100 * max(0.0, -min(ruled)),
        "gain_beyond_0.3": any(g > LIMIT for g in ruled),
        "plain_passes": all(g >= -LIMIT for g in ruled),
    }


def best_seconds(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each run's fastest of ``rounds``, the runs taking turns within a round."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(rounds):
        names = list(runs)
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return {name: min(s) for name, s in seconds.items()}


def speed(n_docs: int, rounds: int) -> dict[str, Any]:
    """Offline indexing docs/s: colrank's ways and engines beside PyLate ``encode``."""
    docs = load_beir(DATA / "scifact", "test").texts[:n_docs]
    pairs = {
        "colrank plain, default engine (dense + ColBERT)": EncoderPair(
            offline("plain", device="cpu")
        ),
        "colrank plain, onnx fp32 (dense + ColBERT)": EncoderPair(
            offline("plain", device="cpu", engine="onnx")
        ),
        "colrank marked, default engine (dense + ColBERT)": EncoderPair(
            offline("marked", device="cpu")
        ),
    }
    for p in pairs.values():
        p.encode_documents(docs[:8], progress=False)  # load, export, warm up
    pylate = {  # PyLate's own default on CPU is float32; bfloat16 for comparison
        dtype: ColbertEncoder.load(
            OFFLINE_MODEL,
            offline("marked", device="cpu", dtype=dtype).runtime,
            stand_in_inputs="marked",
        ).model
        for dtype in ("float32", "bfloat16")
    }
    for model in pylate.values():
        model.encode(docs[:8], is_query=False, batch_size=32, show_progress_bar=False)
    runs: dict[str, Callable[[], object]] = {
        **{
            f"PyLate encode {dtype} (ColBERT only)": lambda m=m: m.encode(
                docs, is_query=False, batch_size=32, show_progress_bar=False
            )
            for dtype, m in pylate.items()
        },
        **{name: lambda p=p: p.encode_documents(docs, progress=False) for name, p in pairs.items()},
    }
    seconds = best_seconds(runs, rounds)
    fp32, bf16 = (seconds[f"PyLate encode {d} (ColBERT only)"] for d in ("float32", "bfloat16"))
    return {
        "documents": len(docs),
        "rounds": rounds,
        "engines": {name: [p.engine, p.runtime.dtype] for name, p in pairs.items()},
        "one_forward": {name: p.backbones.one_forward for name, p in pairs.items()},  # type: ignore[union-attr]
        "runs": {
            name: {
                "docs_per_s": len(docs) / s,
                "ratio_to_pylate": fp32 / s,
                "ratio_to_pylate_bf16": bf16 / s,
            }
            for name, s in seconds.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="also measure indexing docs/s")
    parser.add_argument("--skip-quality", action="store_true", help="the speed part alone")
    parser.add_argument("--speed-docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)  # truncation notes
    previous = RESULTS / "one_forward.json"
    result: dict[str, Any] = json.loads(previous.read_text()) if previous.is_file() else {}
    previous_file = dict(result)
    kept = ("runs", "verdict", "speed", "quality_measured")
    result = {k: result[k] for k in kept if k in result}
    if "runs" in result and "quality_measured" not in result:  # written by an older run
        result["quality_measured"] = {k: previous_file[k] for k in ("command", "date")}
    if not args.skip_quality:
        runs = {c: {way: quality(c, way) for way in WAYS} for c in CORPORA}
        for corpus, row in runs.items():
            print(corpus, json.dumps(row, indent=1), flush=True)
        result.update(runs=runs, verdict=verdict(runs))
        result["quality_measured"] = {
            "command": "python " + " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        print(json.dumps(result["verdict"], indent=1))
    if args.speed or args.skip_quality:
        result["speed"] = speed(args.speed_docs, args.rounds)
        print(json.dumps(result["speed"], indent=1))
    write_result("one_forward", result)


if __name__ == "__main__":
    main()
