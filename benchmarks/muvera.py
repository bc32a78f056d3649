"""The ColBERT-only first stage (MUVERA) against dense recall: recall@100, quality, speed.

For each ColBERT (the offline stand-in, and the one ``colrank finetune`` trains on SciFact
*train*, as benchmarks/finetune_scifact.py does) and each corpus (SciFact test, MS MARCO
DL19 subset): recall@100 of dense recall, of MUVERA recall at a few settings, nDCG@10
of dense top-100 -> MaxSim and of MUVERA top-100 -> MaxSim, and the time to build the
encodings from the stored tokens. ``--timing`` adds per-query latency (p50/p95) of the
MUVERA stage and of whole searches, one query at a time.

    python benchmarks/muvera.py                  # recall and quality, both models
    python benchmarks/muvera.py --models offline # the stand-in only (no fine-tuning)
    python benchmarks/muvera.py --timing         # also latency (run alone on the machine)

The fine-tuned ColBERT is read from models/scifact-colbert; when it is not there it is
trained first, as benchmarks/finetune_scifact.py does (2 epochs: 21 minutes on 2 idle CPU
cores, results/finetune_scifact.json; on a shared machine 206 steps at 17-27 s each, over
an hour), then each corpus's stored tokens are re-encoded with it (about 4 minutes per
corpus on idle cores). Indexes are kept under indexes/; building the offline SciFact one
takes a few minutes on idle cores (41 on a busy one).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from common import RESULTS, ROOT, SCIFACT, scifact_index, write_result

from colrank import ColrankConfig, ColrankIndex, MuveraConfig
from colrank.eval.bench import query_latency
from colrank.eval.corpus import BeirDataset, load_beir, read_corpus
from colrank.eval.metrics import ndcg_at_k, recall_at_k

MSMARCO = ROOT / ".." / "shared" / "data" / "msmarco-dl19"
FINETUNED = ROOT / "models" / "scifact-colbert"
INDEXES = ROOT / "indexes"
SETTINGS = {  # name -> MUVERA settings; the first is ColrankConfig's default
    "k5-p16-r20 (10240-d)": MuveraConfig(),
    "k5-p16-r20 -> 2048-d": MuveraConfig(final_dim=2048),
    "k4-p16-r10 (2560-d)": MuveraConfig(k_sim=4, r_reps=10),
    "k6-p16-r20 (20480-d)": MuveraConfig(k_sim=6),
}
DEPTH = 100


def finetuned_model() -> tuple[str, float | None]:
    """The fine-tuned ColBERT's folder, trained first when missing (and the minutes it took)."""
    if (FINETUNED / "config.json").is_file():
        return str(FINETUNED), None
    from colrank.training.finetune import FinetuneConfig, finetune

    index, _ = scifact_index()
    started = time.perf_counter()
    train = load_beir(SCIFACT, "train")
    finetune("offline:minilm", train, FINETUNED, index=index, config=FinetuneConfig(epochs=2.0))
    return str(FINETUNED), (time.perf_counter() - started) / 60


def offline_index(corpus: str) -> ColrankIndex:
    """The corpus indexed with the offline models (built and saved the first time)."""
    if corpus == "scifact":
        return scifact_index()[0]
    path = INDEXES / f"{corpus}-offline"
    if path.joinpath("CURRENT").is_file():
        return ColrankIndex.load(path)
    ids, texts, metas = read_corpus(MSMARCO)
    index = ColrankIndex(ColrankConfig.offline())
    index.add(texts, metas, ids)
    index.save(path)
    return index


def index_for(corpus: str, model: str, colbert: str) -> tuple[ColrankIndex, float | None]:
    """The corpus's index whose stored tokens come from ``colbert`` (re-encoded once)."""
    if model == "offline":
        return offline_index(corpus), None
    path = INDEXES / f"{corpus}-{model}"
    if path.joinpath("CURRENT").is_file():
        return ColrankIndex.load(path, trust_models=True), None
    index = offline_index(corpus)
    started = time.perf_counter()
    index.reencode_tokens(colbert, progress=False)
    minutes = (time.perf_counter() - started) / 60
    index.save(path)
    return ColrankIndex.load(path, trust_models=True), minutes


def run(index: ColrankIndex, data: BeirDataset, first_stage: str) -> dict[str, list[str]]:
    """Each query's top ``DEPTH`` ids by the first stage alone."""
    return {
        qid: [h.id for h in index.recall(q, k=DEPTH, first_stage=first_stage)]
        for qid, q in data.queries.items()
    }


def reranked(index: ColrankIndex, data: BeirDataset, first_stage: str) -> dict[str, list[str]]:
    """Each query's top 10 after MaxSim over the first stage's top ``DEPTH``."""
    return {
        qid: [
            h.id
            for h in index.search(
                q, k=10, candidates=DEPTH, first_stage=first_stage, rerank_fusion="none"
            )
        ]
        for qid, q in data.queries.items()
    }


def measure(index: ColrankIndex, data: BeirDataset, timing: bool) -> dict[str, Any]:
    """Dense and MUVERA recall@100 and nDCG@10 after MaxSim, and latency when asked."""
    out: dict[str, Any] = {
        "dense": {
            "recall@100": recall_at_k(run(index, data, "dense"), data.qrels, DEPTH),
            "ndcg@10 after MaxSim": ndcg_at_k(reranked(index, data, "dense"), data.qrels, 10),
        },
        "muvera": {},
    }
    queries = list(data.queries.values())
    for name, settings in SETTINGS.items():
        index.config.muvera = settings  # the pipeline reads the index's config object
        started = time.perf_counter()
        index.recall(queries[0], k=1, first_stage="muvera")  # builds the encodings
        build = time.perf_counter() - started
        entry = {
            "settings": settings.model_dump(),
            "dimension": dimension(settings, index.stats()["colbert_dim"]),
            "build_seconds": build,
            "recall@100": recall_at_k(run(index, data, "muvera"), data.qrels, DEPTH),
        }
        if name == next(iter(SETTINGS)):
            ranked = reranked(index, data, "muvera")
            entry["ndcg@10 after MaxSim"] = ndcg_at_k(ranked, data.qrels, 10)
            if timing:
                entry["latency"] = latency(index, queries, "muvera")
                out["dense"]["latency"] = latency(index, queries, "dense")
        out["muvera"][name] = entry
        print(f"  {name:<24} recall@100 {entry['recall@100']:.4f} (build {build:.1f} s)")
    print(f"  {'dense':<24} recall@100 {out['dense']['recall@100']:.4f}")
    index.config.muvera = MuveraConfig()
    return out


def dimension(settings: MuveraConfig, token_dim: int) -> int:
    """Dimensions of one encoding."""
    full = settings.r_reps * 2**settings.k_sim * (settings.d_proj or token_dim)
    return settings.final_dim or full


def latency(index: ColrankIndex, queries: list[str], first_stage: str) -> dict[str, Any]:
    """One query at a time: the whole search and its stages (after one warm-up query)."""
    timed = query_latency(index, queries, DEPTH, first_stage=first_stage, rerank_fusion="none")
    stage = "muvera" if first_stage == "muvera" else "faiss"
    return {"search": timed["total"], "stage": timed["stages"].get(stage)}


def kept_models(name: str) -> dict[str, Any]:
    """The models an earlier run of this benchmark measured (a run of one model adds to them)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="offline,finetuned", help="offline and/or finetuned")
    parser.add_argument("--corpora", default="scifact,msmarco", help="scifact and/or msmarco")
    parser.add_argument("--timing", action="store_true", help="also per-query latency")
    args = parser.parse_args()
    corpora = {"scifact": load_beir(SCIFACT, "test"), "msmarco": load_beir(MSMARCO, "test")}
    name = "muvera" + ("_timing" if args.timing else "")
    results: dict[str, Any] = {"depth": DEPTH, "models": kept_models(name)}
    for model in args.models.split(","):
        colbert, train_minutes = "offline:minilm", None
        if model == "finetuned":
            colbert, train_minutes = finetuned_model()
        entry: dict[str, Any] = {"colbert": colbert, "train_minutes": train_minutes}
        for corpus in args.corpora.split(","):
            print(f"{model} on {corpus}")
            index, reencode_minutes = index_for(corpus, model, colbert)
            entry[corpus] = measure(index, corpora[corpus], args.timing)
            entry[corpus]["reencode_minutes"] = reencode_minutes
            entry[corpus]["documents"] = len(index)
            index.close()
        results["models"][model] = entry
    write_result(name, results)


if __name__ == "__main__":
    main()
