"""Does ONNX Runtime change what colrank finds? nDCG@10 per engine on both shared corpora.

For each engine (``torch``: the PyTorch indexes built before the engines existed;
``onnx``: ONNX Runtime fp32; ``onnx-int8``: dynamically quantised int8), every document
is indexed and every query encoded with that engine, and the default search and dense
recall are evaluated on SciFact test and MS MARCO DL19. ``torch-bf16`` is PyTorch with
the model in bfloat16 (``RuntimeConfig.dtype``), not an engine of its own. The rule fixed
before running: an engine may be the CPU default only if both nDCG@10 stay within 0.3
points of torch on both corpora.

Those rows read the stand-in ColBERT's inputs ``marked`` (how it was when they were
measured). Rows named ``plain-<engine>`` read them ``plain`` (one forward per text, the
offline default since issue 27): ``plain-onnx`` (fp32) is their reference, and
``plain-torch-bf16`` (what ``engine="auto"`` runs on CPUs with native bfloat16) is held
to the same 0.3-point rule against it.

    python benchmarks/engine_quality.py [--engines torch,torch-bf16]
    python benchmarks/engine_quality.py --engines plain-onnx,plain-torch-bf16

``--engines`` runs those rows only and keeps the other rows of the last results.

Needs ``indexes/<corpus>-offline`` (``default_search_features.py``) for the torch rows;
builds ``indexes/<corpus>-offline-<engine>`` for the others (minutes on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import torch
from common import RESULTS, ROOT, write_result

from colrank import ColrankConfig, ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")
ENGINES = ("torch", "onnx", "onnx-int8", "torch-bf16", "plain-onnx", "plain-torch-bf16")
REFERENCE = {"plain": "plain-onnx", "marked": "torch"}


def way_of(variant: str) -> str:
    """How the variant's stand-in ColBERT reads its inputs."""
    return "plain" if variant.startswith("plain-") else "marked"


def engine_of(variant: str) -> str:
    """The engine a variant runs (``onnx-int8`` stays itself)."""
    return variant.removeprefix("plain-").removesuffix("-bf16")


def index_for(corpus: str, variant: str) -> tuple[ColrankIndex, float | None]:
    engine = engine_of(variant)
    dtype = "bfloat16" if variant.endswith("-bf16") else "auto"
    os.environ["COLRANK_ENGINE"] = engine  # queries of a loaded index use this engine
    os.environ["COLRANK_DTYPE"] = dtype
    if variant == "torch":
        return ColrankIndex.load(ROOT / "indexes" / f"{corpus}-offline"), None
    path = ROOT / "indexes" / f"{corpus}-offline-{variant}"
    if (path / "CURRENT").is_file():
        return ColrankIndex.load(path), None
    data = load_beir(DATA / corpus, "test")
    config = ColrankConfig.offline(models={"stand_in_inputs": way_of(variant)})
    config = config.model_copy(
        update={"runtime": config.runtime.model_copy(update={"engine": engine, "dtype": dtype})}
    )
    index = ColrankIndex(config)
    start = time.perf_counter()
    index.add(data.texts, data.metadatas, data.ids)
    seconds = time.perf_counter() - start
    index.save(path)
    return index, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    chosen = parser.parse_args().engines.split(",")
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)  # truncation notes
    previous = RESULTS / "engine_quality.json"
    runs: dict[str, dict[str, dict[str, float | None]]] = {}
    if set(chosen) != set(ENGINES) and previous.is_file():
        runs = json.loads(previous.read_text())["runs"]
    for engine in chosen:
        for corpus in CORPORA:
            index, seconds = index_for(corpus, engine)
            assert index.encoders.engine == engine_of(engine)
            if engine.endswith("-bf16"):  # the loaded models really are in bfloat16
                assert index.encoders.colbert.model.dtype == torch.bfloat16
            report = evaluate_index(
                index, load_beir(DATA / corpus, "test"), (100,), first_stages=("dense",)
            )
            runs.setdefault(engine, {})[corpus] = {
                "default_ndcg@10": report["default"]["ndcg@10"],
                "dense_ndcg@10": report["dense"]["ndcg@10"],
                "documents": len(index),
                "index_seconds": seconds,
            }
            print(engine, corpus, runs[engine][corpus], flush=True)
    verdict = {}
    for engine in [e for e in ENGINES if e in runs and e not in REFERENCE.values()]:
        reference = runs[REFERENCE[way_of(engine)]]
        gaps = [
            abs(runs[engine][c][key] - reference[c][key])  # type: ignore[operator]
            for c in CORPORA
            for key in ("default_ndcg@10", "dense_ndcg@10")
        ]
        verdict[engine] = {"largest_gap_points": 100 * max(gaps), "within_0.3": max(gaps) <= 0.003}
    print(verdict)
    write_result("engine_quality", {"runs": runs, "verdict": verdict})


if __name__ == "__main__":
    main()
