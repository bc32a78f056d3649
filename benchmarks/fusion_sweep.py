"""Choose the search defaults on SciFact *train* (test queries are never used here).

Sweeps the ColBERT interpolation weight for each first stage, plus RRF fusion.

    python benchmarks/fusion_sweep.py
"""

from __future__ import annotations

from common import SCIFACT, scifact_index, write_result

from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index

WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def main() -> None:
    index, _ = scifact_index()
    data = load_beir(SCIFACT, "train")
    report = evaluate_index(
        index,
        data,
        (100,),
        first_stages=("dense", "bm25", "hybrid"),
        weights=WEIGHTS,
        with_rrf=True,
    )
    for run, m in report.items():
        print(f"{run:<26} ndcg@10={m['ndcg@10']:.4f} recall@100={m['recall@100']:.4f}")
    write_result(
        "fusion_sweep_train",
        {
            "dataset": f"BEIR SciFact train ({len(data.queries)} queries)",
            "weights": WEIGHTS,
            "report": report,
        },
    )


if __name__ == "__main__":
    main()
