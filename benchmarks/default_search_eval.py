"""Acceptance check of the default search: default vs dense on both shared corpora, one run.

Evaluates ``ColrankIndex.search`` with its defaults (the ``default`` run of
:func:`colrank.evaluation.evaluate_index`, as ``colrank eval`` prints it) against dense
recall alone on SciFact test and MS MARCO DL19, with the offline stand-in ColBERT and,
when ``models/scifact-colbert`` exists (``colrank finetune`` on SciFact train), with
that fine-tuned ColBERT too. Nothing is chosen here.

    python benchmarks/default_search_eval.py [--name refactor_eval]

Needs the indexes made by ``default_search_features.py`` (``--colbert`` for the
fine-tuned one).
"""

from __future__ import annotations

from common import ROOT, write_result

from colrank import ColrankIndex
from colrank.eval.corpus import load_beir

DATA = ROOT / ".." / "shared" / "data"
CORPORA = ("scifact", "msmarco-dl19")
TUNED = ROOT / "models" / "scifact-colbert"


def main() -> None:
    import argparse

    from colrank.eval.evaluation import evaluate_index

    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="default_search_eval", help="result file name")
    args = parser.parse_args()

    runs: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    variants = {"offline": "offline"}
    if (TUNED / "config.json").is_file() or TUNED.is_dir():
        variants["fine-tuned on SciFact train"] = TUNED.name
    for label, suffix in variants.items():
        for corpus in CORPORA:
            path = ROOT / "indexes" / f"{corpus}-{suffix}"
            if not (path / "CURRENT").is_file():
                print(f"skip {label} / {corpus}: no index at {path}")
                continue
            index = ColrankIndex.load(path)
            report = evaluate_index(
                index, load_beir(DATA / corpus, "test"), (100,), first_stages=("dense", "hybrid")
            )
            runs.setdefault(label, {})[corpus] = report
            print(
                f"{label:<30} {corpus:<14} default {report['default']['ndcg@10']:.4f}  "
                f"dense {report['dense']['ndcg@10']:.4f}"
            )
    write_result(args.name, {"runs": runs})


if __name__ == "__main__":
    main()
