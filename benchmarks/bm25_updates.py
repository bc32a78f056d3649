"""BM25 under a stream of additions: colrank's in-place index vs rebuilding with bm25s.

A RAG application adds a few documents, then queries, again and again. Each round here
adds one document and runs one query, on a corpus of SciFact texts repeated to the sizes
given. *colrank* updates its BM25 in place (only the new document is tokenized; postings
are regrouped lazily); *bm25s rebuild* re-tokenizes and re-indexes every text, which is
what colrank did before (bm25s indexes are static). Both are timed side by side in one
run; the scores of the two agree (checked on the final corpus).

    python benchmarks/bm25_updates.py [--sizes 5183,51830] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import bm25s
import numpy as np
import Stemmer
from common import SCIFACT, percentiles, write_result

from colrank.eval.corpus import read_corpus
from colrank.store.local.lexical_index import BM25Index

QUERY = "cancer cells respond to hypoxia"


def bm25s_rebuild(texts: list[str], query: str) -> np.ndarray:
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    model.index(tokens, show_progress=False)
    tokens = bm25s.tokenize(
        [query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )[0]
    return model.get_scores([t for t in tokens if t in model.vocab_dict])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5183,51830")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _, corpus, _ = read_corpus(SCIFACT)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        texts = (corpus * (size // len(corpus) + 1))[:size]
        index = BM25Index()
        start = time.perf_counter()
        index.add(list(range(size)), texts)
        index.scores(QUERY)
        first_build = time.perf_counter() - start
        ours, rebuild = [], []
        for r in range(args.rounds):
            new = f"Round {r}: hypoxia changes how tumour cells use glucose."
            texts.append(new)
            start = time.perf_counter()
            index.add([len(texts) - 1], [new])
            got = index.scores(QUERY)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            want = bm25s_rebuild(texts, QUERY)
            rebuild.append(time.perf_counter() - start)
        diff = float(np.abs(got - want).max())
        row = {
            "documents": size,
            "first_build_s": first_build,
            "colrank_add_then_query": percentiles(ours),
            "bm25s_rebuild_then_query": percentiles(rebuild),
            "max_abs_score_diff": diff,
        }
        results.append(row)
        print(
            f"{size:>8} docs: add+query {row['colrank_add_then_query']['p50_ms']:.1f} ms vs "
            f"rebuild+query {row['bm25s_rebuild_then_query']['p50_ms']:.0f} ms (diff {diff:.1e})"
        )
    write_result("bm25_updates", {"rounds": args.rounds, "query": QUERY, "sizes": results})


if __name__ == "__main__":
    main()
