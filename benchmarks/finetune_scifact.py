"""Fine-tune the offline ColBERT on SciFact *train* qrels, then measure SciFact test.

Training uses only train queries (a held-out slice of them for model selection); test
queries are used once, after training, for the figures.

    python benchmarks/finetune_scifact.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time

from common import ROOT, SCIFACT, SCIFACT_INDEX, write_result

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir
from colrank.eval.evaluation import evaluate_index
from colrank.training.finetune import FinetuneConfig, finetune

OUT = ROOT / "models" / "scifact-colbert"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    config = FinetuneConfig(epochs=args.epochs)
    train = load_beir(SCIFACT, "train")
    index = ColrankIndex.load(SCIFACT_INDEX)
    started = time.perf_counter()
    result = finetune("offline:minilm", train, OUT, index=index, config=config)
    train_minutes = (time.perf_counter() - started) / 60
    print(json.dumps(result.__dict__, indent=2))

    test = load_beir(SCIFACT, "test")
    before = evaluate_index(index, test, (100,), progress=False)
    start = time.perf_counter()
    index.reencode_tokens(str(OUT), progress=False)
    reencode_minutes = (time.perf_counter() - start) / 60
    after = evaluate_index(index, test, (100,), first_stages=("dense", "hybrid"), weights=(0.5,))
    for run in ("dense", "dense>colbert@100", "hybrid", "default"):
        print(f"{run:<24} nDCG@10 {after[run]['ndcg@10']:.4f}")
    write_result(
        "finetune_scifact",
        {
            "base": "offline:minilm",
            "config": config.model_dump(),
            "result": result.__dict__,
            "wall_minutes_including_mining": train_minutes,
            "reencode_corpus_minutes": reencode_minutes,
            "inference_document_length": index.colbert_encoder.document_length,
            "test_before": before,
            "test_after": after,
        },
    )


if __name__ == "__main__":
    main()
