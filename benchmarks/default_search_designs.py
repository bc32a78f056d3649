"""Compare candidate designs for the default search on identical per-query features.

Reads ``indexes/features/*.npz`` (made by ``default_search_features.py``), ranks every
query's pool by each design, and reports nDCG@10 per corpus and split. Weights are
*chosen on SciFact train only*; SciFact test and MS MARCO DL19 are reported, never
used to pick (see the rule in ``choose``).

    python benchmarks/default_search_designs.py [--tag offline] [--write]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass

import numpy as np
from common import ROOT, write_result

from colrank.eval.corpus import load_beir
from colrank.eval.metrics import ndcg_at_k
from colrank.scoring.fusion import interpolate, rrf

DATA = ROOT / ".." / "shared" / "data"
FEATURES = ROOT / "indexes" / "features"
SETS = (("scifact", "train"), ("scifact", "test"), ("msmarco-dl19", "test"))
SPECIAL = {0, 100, 101, 102, 103, 1, 2}  # pad, unk, cls, sep, mask, [unused0/1]
DEPTH = 100
CHOSEN = (0.3, 0.2)  # what choose() picks on SciFact train (checked in main)


@dataclass
class Query:
    qid: str
    pool: np.ndarray  # doc ids
    dense: np.ndarray
    bm25: np.ndarray
    tokens: np.ndarray  # (n, Lq) per-query-token MaxSim
    token_ids: np.ndarray
    bm25_max: float


def load(name: str, split: str, tag: str) -> list[Query]:
    if split == "dev":  # the fine-tuning run's held-out train queries
        from colrank.training.finetune import FinetuneConfig, _split

        train = load(name, "train", tag)
        cfg = FinetuneConfig()
        dev = _split({q.qid: "" for q in train}, cfg.dev_fraction, cfg.seed)[1]
        return [q for q in train if q.qid in dev]
    f = np.load(FEATURES / f"{name}-{split}-{tag}.npz")
    cuts = np.concatenate([[0], np.cumsum(f["sizes"])])
    out = []
    for i, qid in enumerate(f["qids"]):
        s = slice(cuts[i], cuts[i + 1])
        out.append(
            Query(
                str(qid),
                f["pool"][s],
                f["dense"][s].astype(np.float64),
                np.nan_to_num(f["bm25"][s].astype(np.float64), nan=0.0),
                f["tokens"][s].astype(np.float64),
                f["token_ids"][i],
                float(f["bm25_max"][i]),
            )
        )
    return out


# ------------------------------------------------------------------ stage scores
def colbert(q: Query, which: str) -> np.ndarray:
    """Mean best similarity over a choice of query tokens (a depth-free scale)."""
    ids = q.token_ids
    if which == "all":
        keep = np.ones(len(ids), bool)
    elif which == "nomask":
        keep = ids != 103
    else:  # words: no special tokens, no [MASK] expansion
        keep = ~np.isin(ids, list(SPECIAL))
    if not keep.any():
        keep = np.ones(len(ids), bool)
    return q.tokens[:, keep].mean(axis=1)


def bm25n(q: Query) -> np.ndarray:
    return q.bm25 / q.bm25_max if q.bm25_max > 0 else np.zeros_like(q.bm25)


def dense_pool(q: Query, depth: int = DEPTH) -> np.ndarray:
    return np.argsort(-q.dense, kind="stable")[:depth]


def bm25_top(q: Query, depth: int = DEPTH) -> np.ndarray:
    order = np.argsort(-q.bm25, kind="stable")
    return order[q.bm25[order] > 0][:depth]


def union_pool(q: Query, depth: int = DEPTH) -> np.ndarray:
    return np.array(list(dict.fromkeys([*dense_pool(q, depth), *bm25_top(q, depth)])))


# ----------------------------------------------------------------------- designs
def rank_ids(q: Query, positions: np.ndarray, scores: np.ndarray) -> list[str]:
    order = np.argsort(-scores, kind="stable")
    return [str(q.pool[positions[i]]) for i in order]


def design_dense(q: Query) -> list[str]:
    p = dense_pool(q)
    return rank_ids(q, p, q.dense[p])


def design_bm25(q: Query) -> list[str]:
    p = bm25_top(q)
    return rank_ids(q, p, q.bm25[p])


def hybrid_rrf_pool(q: Query) -> tuple[np.ndarray, np.ndarray]:
    """Today's hybrid: RRF of the dense and BM25 top-100 lists, best 100 kept."""
    d, b = dense_pool(q), bm25_top(q)
    union = np.array(list(dict.fromkeys([*d, *b])))
    rd = {p: r for r, p in enumerate(d, 1)}
    rb = {p: r for r, p in enumerate(b, 1)}
    fused = np.array([1 / (60 + rd[p]) if p in rd else 0 for p in union]) + np.array(
        [1 / (60 + rb[p]) if p in rb else 0 for p in union]
    )
    keep = np.argsort(-fused, kind="stable")[:DEPTH]
    return union[keep], fused[keep]


def design_hybrid(q: Query) -> list[str]:
    p, s = hybrid_rrf_pool(q)
    return rank_ids(q, p, s)


def design_old_default(q: Query) -> list[str]:
    p, s = hybrid_rrf_pool(q)
    return rank_ids(q, p, interpolate(colbert(q, "all")[p], s, 0.5))


def design_dense_colbert(q: Query) -> list[str]:
    p = dense_pool(q)
    return rank_ids(q, p, colbert(q, "all")[p])


def trunc_pool(q: Query, wb: float, wc: float) -> np.ndarray:
    """The union cut to 100 by the first-stage part of the same fusion (MaxSim on 100)."""
    p = union_pool(q)
    wd = 1 - wb - wc
    first = (wd * q.dense[p] + wb * bm25n(q)[p]) / max(wd + wb, 1e-9)
    return p[np.argsort(-first, kind="stable")[:DEPTH]]


def pick_pool(q: Query, pool: str, wb: float = 0.0, wc: float = 0.0) -> np.ndarray:
    if pool == "union":
        return union_pool(q)
    if pool == "trunc":
        return trunc_pool(q, wb, wc)
    return dense_pool(q)


def linear(wb: float, wc: float, which: str, pool: str):
    """Dense-anchored calibrated fusion: (1-wb-wc)*cos + wb*BM25/max + wc*mean MaxSim."""

    def run(q: Query) -> list[str]:
        p = pick_pool(q, pool, wb, wc)
        s = (1 - wb - wc) * q.dense[p] + wb * bm25n(q)[p] + wc * colbert(q, which)[p]
        return rank_ids(q, p, s)

    return run


def agreement(a: np.ndarray, b: np.ndarray, depth: int = 10) -> float:
    """Share of the top ``depth`` that two score arrays over one pool have in common."""
    top_a = set(np.argsort(-a, kind="stable")[:depth].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:depth].tolist())
    return len(top_a & top_b) / depth


def adaptive(wb: float, wc: float, gate: str):
    """Weights scaled per query by an unsupervised signal (no labels).

    ``agree``: by how much BM25's (ColBERT's) top 10 overlaps dense's top 10 - when a
    stage disagrees completely with the anchor, trust the anchor. ``match``: BM25 by
    the share of the query's BM25 mass its best candidate matches.
    """

    def run(q: Query) -> list[str]:
        p = union_pool(q)
        d, b, c = q.dense[p], bm25n(q)[p], colbert(q, "all")[p]
        if gate == "agree":
            gb, gc = agreement(d, b), agreement(d, c)
        else:
            gb, gc = float(b.max()), 1.0
        eb, ec = wb * gb, wc * gc
        return rank_ids(q, p, (1 - eb - ec) * d + eb * b + ec * c)

    return run


def weighted_rrf(wb: float, wc: float, pool: str):
    def run(q: Query) -> list[str]:
        p = union_pool(q) if pool == "union" else dense_pool(q)
        return rank_ids(q, p, rrf([q.dense[p], q.bm25[p], colbert(q, "all")[p]], 60, [1, wb, wc]))

    return run


def minmax_interp(wb: float, wc: float, pool: str):
    """The same weights on per-query min-max scores (depth-dependent, for comparison)."""

    def run(q: Query) -> list[str]:
        p = union_pool(q) if pool == "union" else dense_pool(q)
        a = interpolate(q.dense[p], q.bm25[p], 1 - wb / max(1 - wc, 1e-9))
        s = (1 - wc) * a + wc * interpolate(colbert(q, "all")[p], q.dense[p], 1.0)
        return rank_ids(q, p, s)

    return run


# ------------------------------------------------------------------------ report
def score(queries: list[Query], qrels, design) -> tuple[float, np.ndarray]:
    per = np.array([ndcg_at_k({q.qid: design(q)}, {q.qid: qrels[q.qid]}, 10) for q in queries])
    return float(per.mean()), per


GRID_B = (0.0, 0.1, 0.2, 0.3, 0.4)
GRID_C = (0.0, 0.1, 0.2, 0.3, 0.4)


def designs() -> dict[str, object]:
    out: dict[str, object] = {
        "dense": design_dense,
        "bm25": design_bm25,
        "hybrid (rrf)": design_hybrid,
        "old default: hybrid>interp(0.5)": design_old_default,
        "dense>colbert@100": design_dense_colbert,
    }
    for wb, wc in itertools.product(GRID_B, GRID_C):
        if wb + wc >= 1:
            continue
        for pool in ("union", "trunc", "dense"):
            out[f"linear[{pool}] b={wb:g} c={wc:g}"] = linear(wb, wc, "all", pool)
    for which in ("nomask", "words"):
        for wc in GRID_C[1:]:
            out[f"linear[union] b=0.2 c={wc:g} tokens={which}"] = linear(0.2, wc, which, "union")
    for gate in ("agree", "match"):
        for wb, wc in itertools.product((0.2, 0.3, 0.4, 0.5, 0.6), (0.1, 0.2, 0.3, 0.4)):
            if wb + wc < 1:
                out[f"adaptive[{gate}] b={wb:g} c={wc:g}"] = adaptive(wb, wc, gate)
    for wb, wc in itertools.product((0.25, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0)):
        out[f"wrrf[union] b={wb:g} c={wc:g}"] = weighted_rrf(wb, wc, "union")
    for wb, wc in itertools.product((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)):
        out[f"minmax[union] b={wb:g} c={wc:g}"] = minmax_interp(wb, wc, "union")
    return out


def top_scores(queries: list[Query], wb: float, wc: float) -> np.ndarray:
    """Each query's best calibrated score (the default fusion, weights as in ``linear``)."""
    out = []
    for q in queries:
        p = trunc_pool(q, wb, wc)
        s = (1 - wb - wc) * q.dense[p] + wb * bm25n(q)[p] + wc * colbert(q, "all")[p]
        out.append(s.max())
    return np.array(out)


def threshold_study(tag: str, wb: float, wc: float) -> dict[str, object]:
    """Top-hit scores of answerable vs unanswerable (the other corpus's) questions.

    The threshold is chosen on SciFact (train questions vs MS MARCO questions asked of
    SciFact) and checked on MS MARCO (its questions vs SciFact test claims).
    """
    groups = {
        "scifact: own train questions": top_scores(load("scifact", "train", tag), wb, wc),
        "scifact: MS MARCO questions": top_scores(
            load("scifact", "foreign-msmarco-dl19", tag), wb, wc
        ),
        "msmarco: own questions": top_scores(load("msmarco-dl19", "test", tag), wb, wc),
        "msmarco: SciFact test claims": top_scores(
            load("msmarco-dl19", "foreign-scifact", tag), wb, wc
        ),
    }
    pos, neg = list(groups.values())[:2]
    grid = np.linspace(0, 1, 401)
    accuracy = [((pos >= t).mean() + (neg < t).mean()) / 2 for t in grid]
    threshold = float(grid[int(np.argmax(accuracy))])
    check_pos, check_neg = list(groups.values())[2:]
    return {
        "threshold (chosen on scifact)": threshold,
        "scifact balanced accuracy": float(max(accuracy)),
        "msmarco: answerable kept": float((check_pos >= threshold).mean()),
        "msmarco: unanswerable rejected": float((check_neg < threshold).mean()),
        "percentiles (5, 50, 95)": {
            k: np.percentile(v, [5, 50, 95]).round(3).tolist() for k, v in groups.items()
        },
    }


def choose(
    per_query: dict[str, dict[str, np.ndarray]], key: str, anchored: bool = True
) -> dict[str, object]:
    """The selection rule, on one split's per-query nDCG@10 (SciFact train only).

    Dense keeps at least half of the weight (BM25 and ColBERT may promote, not
    replace, its candidates); among those, the largest lower confidence bound (mean - 2
    standard errors) of the per-query gain over dense; a tie (within 0.0005) goes to
    the design that makes the fewest queries worse than dense. For a trained ColBERT
    (``anchored=False``) the first condition is dropped and only ColBERT's share varies.
    """
    base = per_query["dense"][key]
    rows = []
    for label, by_set in per_query.items():
        if not label.startswith("linear[trunc]"):
            continue
        wb, wc = (float(x.split("=")[1]) for x in label.split("]")[1].split())
        if (anchored and wb + wc > 0.5 + 1e-9) or wb + wc == 0:
            continue
        gain = by_set[key] - base
        lcb = gain.mean() - 2 * gain.std(ddof=1) / np.sqrt(len(gain))
        rows.append({"design": label, "lcb": lcb, "worse": float((gain < 0).mean())})
    best = max(r["lcb"] for r in rows)
    tied = [r for r in rows if r["lcb"] >= best - 5e-4]
    chosen = min(tied, key=lambda r: r["worse"])
    return {"on": key, "chosen": chosen["design"], "tied": tied, "rule": choose.__doc__}


TUNED_C = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
STAND_IN_FIRST_BM25 = 0.375  # BM25's share of the first stage: 0.3 / (0.5 + 0.3)


def tuned_designs() -> dict[str, object]:
    """For a trained ColBERT: the first stage as chosen, ColBERT's share swept."""
    out: dict[str, object] = {
        "dense": design_dense,
        "hybrid (rrf)": design_hybrid,
        "dense>colbert@100": design_dense_colbert,
    }
    for wc in TUNED_C:
        wb = round(STAND_IN_FIRST_BM25 * (1 - wc), 4)
        out[f"linear[trunc] b={wb:g} c={wc:g}"] = linear(wb, wc, "all", "trunc")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", default="offline")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results")
    args = parser.parse_args()
    tuned = args.tag != "offline"
    selection_set = ("scifact", "dev") if tuned else ("scifact", "train")
    all_sets = (selection_set, *SETS[1:])
    table: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, np.ndarray]] = {}
    sets = [
        (n, s)
        for n, s in all_sets
        if (FEATURES / f"{n}-{'train' if s == 'dev' else s}-{args.tag}.npz").is_file()
    ]
    for name, split in sets:
        queries = load(name, split, args.tag)
        qrels = load_beir(DATA / name, "train" if split == "dev" else split).qrels
        key = f"{name}/{split}"
        for label, design in (tuned_designs() if tuned else designs()).items():
            mean, per = score(queries, qrels, design)
            table.setdefault(label, {})[key] = mean
            per_query.setdefault(label, {})[key] = per
    keys = [f"{n}/{s}" for n, s in sets]
    print(f"{'design':<44}" + "".join(f"{k:>20}" for k in keys))
    for label, row in table.items():
        print(f"{label:<44}" + "".join(f"{row[k]:>20.4f}" for k in keys))
    selection = choose(per_query, "/".join(selection_set), anchored=not tuned)
    print(f"chosen on {'/'.join(selection_set)}: {selection['chosen']}")
    if args.write:
        payload: dict[str, object] = {"ndcg@10": table, "selection": selection}
        if args.tag == "offline":
            payload["threshold"] = threshold_study(args.tag, *CHOSEN)
        write_result(f"default_search_designs_{args.tag}", payload)


if __name__ == "__main__":
    main()
