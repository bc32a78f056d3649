"""SciFact test: dense-only vs dense -> ColBERT rerank at several depths (offline models).

python benchmarks/scifact_quality.py [--rebuild]
"""

from __future__ import annotations

import argparse

from common import SCIFACT, scifact_index, write_result

from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true", help="re-encode the corpus")
    args = parser.parse_args()
    index, build_seconds = scifact_index(args.rebuild)
    data = load_beir(SCIFACT, "test")
    report = evaluate_index(
        index,
        data,
        (10, 30, 100, 300),
        first_stages=("dense", "bm25", "hybrid"),
        weights=(0.5,),
        with_rrf=True,
    )
    for run, metrics in report.items():
        print(f"{run:<12}" + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    write_result(
        "scifact_quality",
        {
            "dataset": "BEIR SciFact test (300 queries, 5183 documents)",
            "models": {
                "dense": index.config.models.dense_model,
                "colbert": index.config.models.colbert_model,
            },
            "documents": len(index),
            "default_run": "default",
            "build_seconds": build_seconds,
            "report": report,
        },
    )


if __name__ == "__main__":
    main()
