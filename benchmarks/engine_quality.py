"""Does ONNX Runtime change what colrank finds? nDCG@10 per engine on both shared corpora.

For each engine (``torch``: the PyTorch indexes built before the engines existed;
``onnx``: ONNX Runtime fp32; ``onnx-int8``: dynamically quantised int8), every document
is indexed and every query encoded with that engine, and the default search and dense
recall are evaluated on SciFact test and MS MARCO DL19. The rule fixed before running:
an engine may be the CPU default only if both nDCG@10 stay within 0.3 points of torch
on both corpora.

    python benchmarks/engine_quality.py

Needs ``indexes/<corpus>-offline`` (``default_search_features.py``) for the torch rows;
builds ``indexes/<corpus>-offline-<engine>`` for the others (minutes on a 2-core CPU).
"""

from __future__ import annotations

import logging
import os
import time

from common import ROOT, write_result

from colrank import ColrankConfig, ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")
ENGINES = ("torch", "onnx", "onnx-int8")


def index_for(corpus: str, engine: str) -> tuple[ColrankIndex, float | None]:
    os.environ["COLRANK_ENGINE"] = engine  # queries of a loaded index use this engine
    if engine == "torch":
        return ColrankIndex.load(ROOT / "indexes" / f"{corpus}-offline"), None
    path = ROOT / "indexes" / f"{corpus}-offline-{engine}"
    if (path / "CURRENT").is_file():
        return ColrankIndex.load(path), None
    data = load_beir(DATA / corpus, "test")
    config = ColrankConfig.offline()
    config = config.model_copy(
        update={"runtime": config.runtime.model_copy(update={"engine": engine})}
    )
    index = ColrankIndex(config)
    start = time.perf_counter()
    index.add(data.texts, data.metadatas, data.ids)
    seconds = time.perf_counter() - start
    index.save(path)
    return index, seconds


def main() -> None:
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)  # truncation notes
    runs: dict[str, dict[str, dict[str, float | None]]] = {}
    for engine in ENGINES:
        for corpus in CORPORA:
            index, seconds = index_for(corpus, engine)
            assert index.encoders.engine == engine
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
    for engine in ENGINES[1:]:
        gaps = [
            abs(runs[engine][c][key] - runs["torch"][c][key])  # type: ignore[operator]
            for c in CORPORA
            for key in ("default_ndcg@10", "dense_ndcg@10")
        ]
        verdict[engine] = {"largest_gap_points": 100 * max(gaps), "within_0.3": max(gaps) <= 0.003}
    print(verdict)
    write_result("engine_quality", {"runs": runs, "verdict": verdict})


if __name__ == "__main__":
    main()
