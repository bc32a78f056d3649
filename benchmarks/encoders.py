"""The query path at the encoding floor: engines and one-call encoding, side by side in one run.

All on the offline MiniLM (dense and stand-in ColBERT share it), 2 threads, CPU:

1. query encoding (batch 1, SciFact test queries, methods taking turns by block): the two library
   encodes of before (sentence-transformers + PyLate), one backbone call in PyTorch
   (float32 and bfloat16: what ``auto`` runs on a CPU with native bfloat16), in ONNX
   Runtime fp32 and int8; and each one's largest difference to the libraries';
2. one transformer forward, PyTorch vs ONNX Runtime fp32 / int8, at query and document
   shapes;
3. document encoding (SciFact documents): PyLate ``encode`` (ColBERT tokens only) vs
   colrank's indexing encode (dense + ColBERT) and its ColBERT-only encode, per engine;
4. on the SciFact index with the default engine: each search stage after encoding
   against one query encoding, and rerank of 100 stored candidates vs PyLate re-encoding.

    python benchmarks/encoders.py [--queries 50] [--rounds 4] [--documents 256]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import time

import numpy as np
import torch
from common import ROOT, percentiles, recoded_index, write_result

from colrank import ColrankConfig
from colrank.config import TokenStoreConfig
from colrank.eval.bench import query_latency, rerank_vs_reencode
from colrank.eval.corpus import load_beir
from colrank.models.backbone import TorchBackbone
from colrank.models.device import one_torch_thread
from colrank.models.pair import EncoderPair
from colrank.rerank.maxsim import maxsim_flat
from colrank.store.local.token_store import TokenStore

DATA = ROOT / ".." / "shared" / "data" / "scifact"
ENGINES = ("torch", "onnx", "onnx-int8")


def pair(engine: str, dtype: str = "auto") -> EncoderPair:
    cfg = ColrankConfig.offline()
    runtime = cfg.runtime.model_copy(
        update={"engine": engine, "dtype": dtype, "device": "cpu", "show_progress": False}
    )
    encoders = EncoderPair(cfg.model_copy(update={"runtime": runtime}))
    encoders.backbones  # noqa: B018 - load (and export) before timing
    return encoders


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rotated(names: list[str], turn: int) -> list[str]:
    """``names`` starting at position ``turn`` (each method leads in turn)."""
    k = turn % len(names)
    return names[k:] + names[:k]


def query_encoding(pairs: dict[str, EncoderPair], queries: list[str], rounds: int) -> dict:
    library = pairs["torch"]
    runs = {
        "two library encodes": lambda q: (
            library.dense.encode([q], progress=False),
            library.colbert.encode_queries([q]),
        ),
        **{f"one call, {e}": (lambda q, p=p: p.encode_queries([q])) for e, p in pairs.items()},
    }
    for fn in runs.values():
        fn(queries[0])  # warm-up
    # Methods take turns by block of queries (the order rotating each round), not query by
    # query: right after another method's PyTorch call, its OpenMP workers still spin-wait
    # for a few milliseconds and take the cores from the next call, a cost an application
    # that encodes with one method never pays (measured: ONNX Runtime 13.4 ms per query
    # alternating per query, 7.3 ms per block; the library encodes 20.5 vs 24.0 ms).
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(rounds):
        for name in rotated(list(runs), turn):
            fn = runs[name]
            seconds[name].extend(timed(lambda fn=fn, q=q: fn(q)) for q in queries)
    diffs = {}
    for name, fn in runs.items():
        worst = 0.0
        for q in queries[:20]:
            ref_v, ref_t = runs["two library encodes"](q)
            v, t = fn(q)
            worst = max(worst, float(np.abs(v - ref_v).max()), float(np.abs(t[0] - ref_t[0]).max()))
        diffs[name] = worst
    base = np.percentile(seconds["two library encodes"], 50)
    return {
        name: {
            **percentiles(s),
            "ratio_to_two_encodes": float(np.percentile(s, 50) / base),
            "max_abs_diff": diffs[name],
        }
        for name, s in seconds.items()
    }


def forwards(pairs: dict[str, EncoderPair]) -> dict:
    transformer = pairs["torch"].colbert.model[0]
    backbones = {
        "torch": TorchBackbone(transformer),
        "torch-bf16": TorchBackbone(pairs["torch-bf16"].colbert.model[0]),
        "onnx": pairs["onnx"].backbones.colbert_backbone,
        "onnx-int8": pairs["onnx-int8"].backbones.colbert_backbone,
    }
    out = {}
    for rows, length in ((1, 32), (2, 32), (32, 256)):
        feats = {
            "input_ids": torch.randint(1000, 20000, (rows, length)),
            "attention_mask": torch.ones(rows, length, dtype=torch.long),
            "token_type_ids": torch.zeros(rows, length, dtype=torch.long),
        }
        times: dict[str, list[float]] = {name: [] for name in backbones}
        for turn in range(3):  # by block, the order rotating (see query_encoding)
            for name in rotated(list(backbones), turn):
                backbone = backbones[name]
                reps = 2 if length > 64 else 5
                times[name].extend(timed(lambda b=backbone, f=feats: b(f)) for _ in range(reps))
        torch_p50 = np.percentile(times["torch"], 50)
        out[f"{rows}x{length}"] = {
            name: {
                "p50_ms": float(np.percentile(t, 50) * 1e3),
                "ratio": float(np.percentile(t, 50) / torch_p50),
            }
            for name, t in times.items()
        }
    return out


def document_encoding(pairs: dict[str, EncoderPair], docs: list[str]) -> dict:
    """Docs/s per encoder; ``torch bfloat16`` (the model in bfloat16, not exact) for scale."""
    library = pairs["torch"]
    variants = {**{e: pairs[e] for e in ENGINES}, "torch bfloat16": pairs["torch-bf16"]}
    model = library.colbert.model
    runs = {
        "PyLate encode (ColBERT only)": lambda: model.encode(
            docs, is_query=False, batch_size=32, show_progress_bar=False
        ),
        "colrank library encodes (dense + ColBERT)": lambda: (
            library.dense.encode(docs, progress=False),
            library.colbert.encode_documents(docs, progress=False),
        ),
    }
    for label, p in variants.items():
        runs[f"colrank {label} (dense + ColBERT)"] = lambda p=p: p.encode_documents(
            docs, progress=False
        )
        lengths = library.colbert.document_lengths(docs)
        runs[f"colrank {label} (ColBERT only)"] = lambda p=p, n=lengths: (
            p.backbones.encode_documents(docs, n, progress=False, dense=False)
        )
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(2):
        for name, fn in runs.items():
            seconds[name].append(timed(fn))
    pylate = min(seconds["PyLate encode (ColBERT only)"])
    reference = model.encode(docs, is_query=False, batch_size=32, show_progress_bar=False)
    out = {}
    for name, s in seconds.items():
        row = {"docs_per_s": len(docs) / min(s), "ratio_to_pylate": pylate / min(s)}
        if name.startswith("colrank") and "library" not in name:
            label = name.removeprefix("colrank ").split(" (")[0]
            _, tokens = variants[label].encode_documents(docs[:32], progress=False)
            row["max_abs_diff_to_pylate"] = max(
                float(np.abs(a - np.asarray(b)).max())
                for a, b in zip(tokens, reference[:32], strict=True)
            )
        out[name] = row
    return out


def fetch_and_maxsim_by_dimension(lengths: np.ndarray, dims=(128, 384), rounds: int = 50) -> dict:
    """Token fetch + MaxSim of 100 candidates in a bfloat16 store, by token dimension.

    Synthetic unit vectors, documents as long as SciFact's token counts (``lengths``,
    before punctuation is dropped, so slightly longer than stored), one PyTorch
    thread as in a search beside ONNX Runtime: what a trained 128-d ColBERT would cost
    instead of the 384-d stand-in (same rows, a third of the bytes and products).
    """
    rng = np.random.default_rng(0)
    out = {}
    for dim in dims:
        store = TokenStore(dim, codec="bfloat16")
        docs = []
        for n in lengths:
            block = rng.standard_normal((int(n), dim)).astype(np.float32)
            docs.append(block / np.linalg.norm(block, axis=1, keepdims=True))
        store.add(list(range(len(docs))), docs)
        query = torch.from_numpy(docs[0][:32].copy())
        fetch, score = [], []
        for _ in range(rounds):
            iids = np.sort(rng.choice(len(docs), 100, replace=False)).tolist()
            start = time.perf_counter()
            codes, n_rows = store.gather_codes(iids)
            middle = time.perf_counter()
            with one_torch_thread():
                maxsim_flat(
                    query,
                    codes,
                    n_rows,
                    decode=functools.partial(store.codec.decode, dtype=torch.bfloat16),
                    compute_dtype=torch.bfloat16,
                )
            fetch.append(middle - start)
            score.append(time.perf_counter() - middle)
        out[str(dim)] = {"token_fetch_p50_ms": 1e3 * float(np.median(fetch))}
        out[str(dim)]["maxsim_p50_ms"] = 1e3 * float(np.median(score))
    return out


def matmul_peak(size: int = 2048) -> dict:
    """The cores' matrix-product rate (GFLOP/s, best of 5): the ceiling for any encoder."""
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        best = min(timed(lambda a=a, b=b: a @ b) for _ in range(5))
        out[name] = 2 * size**3 / best / 1e9
    return out


def forward_gflop(transformer: torch.nn.Module, rows: int, length: int) -> float:
    """Multiply-adds x 2 of one BERT forward: projections, feed-forward and attention."""
    c = transformer.auto_model.config
    per_token = c.num_hidden_layers * (
        4 * c.hidden_size**2 + 2 * c.hidden_size * c.intermediate_size + 2 * length * c.hidden_size
    )
    return 2 * per_token * rows * length / 1e9


def search_stages(queries: list[str]) -> dict:
    # the saved index, with the token codec a new index gets by default
    index = recoded_index(ROOT / "indexes" / "scifact-offline", TokenStoreConfig().codec)
    core = query_latency(index, queries, 100, first_stage="dense", rerank_fusion="none")
    default = query_latency(index, queries, 100)
    encode = core["stages"]["encode"]["p50_ms"]
    after = sum(core["stages"][s]["p50_ms"] for s in ("faiss", "token_fetch", "maxsim", "docstore"))
    engine = index.encoders.engine
    bf16 = engine == "torch" and index.encoders.runtime.dtype == "bfloat16"
    return {
        "engine": "torch-bf16" if bf16 else engine,  # as named in the query encoding rows
        "codec": index.config.token_store.codec,
        "core": core,
        "default": default,
        "after_encoding_p50_ms": after,
        "one_query_encoding_p50_ms": encode,
        "after_encoding_share_of_encoding": after / encode,
        "rerank": rerank_vs_reencode(index, queries, n_reencode=10, candidates=100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--documents", type=int, default=256)
    args = parser.parse_args()
    logging.getLogger("colrank.models.encoders").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    data = load_beir(DATA, "test")
    queries = list(data.queries.values())[: args.queries]
    docs = data.texts[1000 : 1000 + args.documents]
    pairs = {engine: pair(engine) for engine in ENGINES}
    pairs["torch-bf16"] = pair("torch", "bfloat16")  # engine 'auto' on a native-bf16 CPU
    result = {"threads": torch.get_num_threads()}
    result["query_encoding"] = query_encoding(pairs, queries, args.rounds)
    print(
        "query encoding:", {k: round(v["p50_ms"], 2) for k, v in result["query_encoding"].items()}
    )
    result["forward"] = forwards(pairs)
    result["matmul_peak_gflops"] = matmul_peak()
    result["forward_gflop_32x256"] = forward_gflop(pairs["torch"].colbert.model[0], 32, 256)
    print("forward:", result["forward"])
    result["document_encoding"] = document_encoding(pairs, docs)
    print(
        "documents:", {k: round(v["docs_per_s"], 1) for k, v in result["document_encoding"].items()}
    )
    os.environ.pop("COLRANK_ENGINE", None)  # the index gets the default engine
    result["search"] = search_stages(queries)
    lengths = np.asarray(pairs["torch"].colbert.document_lengths(data.texts[:3000]))
    result["fetch_maxsim_by_dim"] = fetch_and_maxsim_by_dimension(lengths)
    print("fetch + MaxSim by dimension:", result["fetch_maxsim_by_dim"])
    print(
        "after encoding:",
        round(result["search"]["after_encoding_p50_ms"], 2),
        "ms vs encoding",
        round(result["search"]["one_query_encoding_p50_ms"], 2),
        "ms; rerank speed-up",
        round(result["search"]["rerank"]["speedup_p50"], 1),
    )
    write_result(
        "encoders",
        {**result, "queries": len(queries), "rounds": args.rounds, "documents": len(docs)},
    )


if __name__ == "__main__":
    main()
