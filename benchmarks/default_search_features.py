"""Per-query stage features for choosing the default search (issue: robust defaults).

For every query of SciFact train/test and MS MARCO DL19, over a candidate pool (dense top
200 plus BM25 top 100, exact scores for all), store: the dense cosine, the raw BM25
score and the query's largest possible BM25 score, and ColBERT MaxSim *per query token*
with the query's token ids. Every fusion design of ``default_search_designs.py`` is then
a reordering of these arrays, so designs are compared on identical inputs in seconds.

    python benchmarks/default_search_features.py [--colbert PATH] [--tag NAME]

Writes ``indexes/features/<corpus>-<split>-<tag>.npz`` (not committed: large, derived).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT

from colrank import ColrankConfig, ColrankIndex
from colrank.eval.corpus import load_beir

DATA = ROOT / ".." / "shared" / "data"
FEATURES = ROOT / "indexes" / "features"
CORPORA = {"scifact": ("train", "test"), "msmarco-dl19": ("test",)}
DENSE_POOL, BM25_POOL = 200, 100


def build_index(name: str, colbert: str | None) -> ColrankIndex:
    """The offline index of one shared corpus (built once, saved under indexes/)."""
    path = ROOT / "indexes" / f"{name}-offline"
    if (path / "CURRENT").is_file():
        index = ColrankIndex.load(path)
    else:
        data = load_beir(DATA / name, CORPORA[name][0])
        index = ColrankIndex(ColrankConfig.offline())
        start = time.perf_counter()
        index.add(data.texts, data.metadatas, data.ids)
        print(f"{name}: indexed {len(index)} docs in {time.perf_counter() - start:.0f}s")
        index.save(path)
    if colbert:
        tagged = ROOT / "indexes" / f"{name}-{Path(colbert).name}"
        if (tagged / "CURRENT").is_file():
            return ColrankIndex.load(tagged)
        index.reencode_tokens(colbert)
        index.save(tagged)
    return index


def per_token_maxsim(q: np.ndarray, codes: np.ndarray, lengths: np.ndarray, decode) -> np.ndarray:
    """``(N, Lq)``: each query token's best similarity in each document."""
    sim = (decode(codes) @ torch.from_numpy(q).T).numpy()
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
    return np.maximum.reduceat(sim, starts, axis=0)


def features(
    index: ColrankIndex, name: str, split: str, tag: str, queries_of: str | None = None
) -> None:
    """Features of one split's queries; ``queries_of`` asks another corpus's questions."""
    data = load_beir(DATA / (queries_of or name), split)
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    if queries_of:
        split = f"foreign-{queries_of}"
    dense_index, tokens = index._stores()  # research script: reads the stores directly
    bm25 = index._lexical()
    all_iids = tokens.ids
    corpus_vectors = dense_index.vectors(all_iids)
    doc_ids = np.array([d.id for d in index._docs.get(all_iids.tolist())])
    qvec = index.dense_encoder.encode(texts, progress=False)
    qtok = index.colbert_encoder.encode_queries(texts)
    tok_ids = index.colbert_encoder.model.tokenize(texts, is_query=True)["input_ids"].numpy()
    dense_all = qvec @ corpus_vectors.T
    out: dict[str, list] = {k: [] for k in ("pool", "dense", "bm25", "tokens")}
    bm25_max, qlens = [], []
    vocab_ids = index.colbert_encoder.model.tokenizer
    for qi, text in enumerate(texts):
        scores = bm25.scores(text)
        d_top = np.argsort(-dense_all[qi])[:DENSE_POOL]
        _, b_iids = bm25.top(scores, BM25_POOL)
        b_pos = np.searchsorted(all_iids, b_iids)
        pool = np.array(list(dict.fromkeys([*d_top.tolist(), *b_pos.tolist()])))
        codes, lengths = tokens.gather_codes(all_iids[pool].tolist())
        out["pool"].append(doc_ids[pool])
        out["dense"].append(dense_all[qi, pool])
        out["bm25"].append(bm25.pick(scores, all_iids[pool]))
        out["tokens"].append(per_token_maxsim(qtok[qi], codes, lengths, tokens.codec.decode))
        bm25_max.append(bm25_query_max(bm25, text))
        qlens.append(len(vocab_ids(text)["input_ids"]))
    FEATURES.mkdir(parents=True, exist_ok=True)
    sizes = np.array([len(p) for p in out["pool"]])
    np.savez_compressed(
        FEATURES / f"{name}-{split}-{tag}.npz",
        qids=np.array(qids),
        sizes=sizes,
        pool=np.concatenate(out["pool"]),
        dense=np.concatenate(out["dense"]),
        bm25=np.concatenate(out["bm25"]),
        tokens=np.concatenate(out["tokens"]),
        token_ids=tok_ids,
        bm25_max=np.array(bm25_max),
        plain_lengths=np.array(qlens),
    )
    print(f"{name}/{split}/{tag}: {len(qids)} queries, mean pool {sizes.mean():.0f}")


def bm25_query_max(bm25, text: str) -> float:
    """The largest BM25 score any document could get for this query (tf -> infinity)."""
    n_live = len(bm25)
    total = 0.0
    for token in bm25._tokenize([text])[0]:
        term = bm25._vocab.get(token)
        if term is None or bm25._df[term] == 0:
            continue
        df = bm25._df[term]
        total += float(np.log1p((n_live - df + 0.5) / (df + 0.5)))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--colbert", default=None, help="another ColBERT model (re-encodes)")
    parser.add_argument("--tag", default="offline")
    parser.add_argument(
        "--foreign", action="store_true", help="ask each corpus the other's test questions"
    )
    args = parser.parse_args()
    for name, splits in CORPORA.items():
        index = build_index(name, args.colbert)
        if args.foreign:
            other = next(n for n in CORPORA if n != name)
            features(index, name, "test", args.tag, queries_of=other)
            continue
        for split in splits:
            features(index, name, split, args.tag)


if __name__ == "__main__":
    main()
