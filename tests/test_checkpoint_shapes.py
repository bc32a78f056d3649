"""ColBERT checkpoints of other shapes than MiniLM, on every engine (tiny random weights).

The shapes are those of the online default ``answerdotai/answerai-colbert-small-v1`` (BERT,
96-d), ``lightonai/GTE-ModernColBERT-v1`` (ModernBERT, 128-d) and ``jinaai/jina-colbert-v2``
(XLM-RoBERTa with its own model code), built in the test in PyLate's file layout
(:mod:`tests.checkpoints`). Each indexes and searches with PyTorch and both ONNX Runtime
engines; a model the exporter cannot trace falls back to PyTorch with one warning; one
backbone call serves both stages only when the dense model is the ColBERT's transformer.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from colrank import ColrankConfig, ColrankIndex
from colrank.errors import ModelLoadError, UntrustedModelError
from colrank.models.backbone import TorchBackbone
from colrank.models.encoders import ColbertEncoder
from colrank.models.identity import check_trusted_models
from colrank.models.ort import onnx_runtime_available

from . import checkpoints
from .conftest import CORPUS


class Shape(NamedTuple):
    build: Callable[[Path], Path]
    dim: int
    document_length: int
    markers: tuple[str, str]
    models: dict[str, Any]  # the ModelConfig settings it loads with


# jina-colbert-v2's files do not record its markers or its attending to the query's
# [MASK]s (the Stanford layout): they are set, as PyLate's documentation does
JINA = {
    "trust_remote_code": True,
    "query_prefix": "[QueryMarker]",
    "document_prefix": "[DocumentMarker]",
    "attend_to_expansion_tokens": True,
}
SHAPES = {
    "bert": Shape(checkpoints.bert_colbert, 96, 300, ("[unused0]", "[unused1]"), {}),
    "modernbert": Shape(checkpoints.modernbert_colbert, 128, 300, ("[Q] ", "[D] "), {}),
    "custom-code": Shape(
        checkpoints.custom_code_colbert, 128, 8192, ("[QueryMarker]", "[DocumentMarker]"), JINA
    ),
}
ENGINES = ["torch", "onnx", "onnx-int8"]
# a document longer than ModernBERT's local attention window (64 tokens in the tiny one)
LONG = " ".join(text for _, text, _ in CORPUS[:8])
DOCS = [*CORPUS, ("long", LONG, {"topic": "all", "year": 2024})]
QUERIES = ["capital of germany", "why does bread rise?"]


@pytest.fixture(scope="module")
def shape_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    return {name: shape.build(root / name) for name, shape in SHAPES.items()}


def config_for(colbert: Path, dense: str, engine: str, **models: Any) -> ColrankConfig:
    return ColrankConfig(
        models={"dense_model": dense, "colbert_model": str(colbert), **models},
        # exact token storage and products: engines are compared score for score
        runtime={
            "device": "cpu",
            "show_progress": False,
            "engine": engine,
            "maxsim_precision": "float32",
        },
        token_store={"codec": "float32"},
    )


def built(config: ColrankConfig) -> ColrankIndex:
    index = ColrankIndex(config)
    ids, texts, metas = zip(*DOCS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


def colbert_scores(index: ColrankIndex) -> list[dict[str, float]]:
    """Every document's MaxSim score for each query (all documents are candidates)."""
    n = len(DOCS)
    return [
        {hit.id: hit.colbert_score for hit in index.search(q, k=n, candidates=n)} for q in QUERIES
    ]


def fallback_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "encoding with PyTorch instead" in r.getMessage()
    ]


def test_onnx_runtime_is_installed_where_the_tests_run() -> None:
    # the engine tests below must run, not skip: colrank[test] installs colrank[onnx]
    assert onnx_runtime_available()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_checkpoint_loads_with_its_settings(shape_dirs, shape) -> None:
    dim, doc_length, (query_marker, doc_marker), models = SHAPES[shape][1:]
    config = config_for(shape_dirs[shape], "offline:minilm", "torch", **models)
    encoder = ColbertEncoder.for_models(config.models, config.runtime)
    model = encoder.model
    assert not encoder.is_stand_in  # a trained-checkpoint layout, not a plain encoder
    assert (encoder.dim, encoder.query_length, encoder.document_length) == (dim, 32, doc_length)
    assert (model.query_prefix, model.document_prefix) == (query_marker, doc_marker)
    # each marker is one token of the saved vocabulary: nothing added, nothing resized
    vocab = model.tokenizer.get_vocab()
    assert vocab[query_marker] == model.query_prefix_id
    assert vocab[doc_marker] == model.document_prefix_id
    assert len(model.tokenizer) == model[0].auto_model.config.vocab_size
    assert model.attend_to_expansion_tokens == (shape == "custom-code")
    tokens = encoder.encode_documents([LONG])[0]
    assert tokens.shape[1] == dim and np.allclose(np.linalg.norm(tokens, axis=1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def torch_scores(shape_dirs, tiny_model_dir) -> dict[str, list[dict[str, float]]]:
    """The reference: each shape's MaxSim scores with the models in PyTorch."""
    out = {}
    for name, shape in SHAPES.items():
        with built(config_for(shape_dirs[name], tiny_model_dir, "torch", **shape.models)) as index:
            out[name] = colbert_scores(index)
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", SHAPES)
def test_index_and_search_on_every_engine(
    shape_dirs, tiny_model_dir, torch_scores, shape, engine, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    config = config_for(shape_dirs[shape], tiny_model_dir, engine, **SHAPES[shape].models)
    with built(config) as index:
        scores = colbert_scores(index)
        pair = index.encoders
        assert pair.encodes_with_onnx_runtime == (engine != "torch")  # exported, no fallback
        # the dense model is another transformer: each model gets its own call
        assert pair.backbones is None if engine == "torch" else not pair.backbones.shared
    assert not fallback_warnings(caplog)
    for ours, reference in zip(scores, torch_scores[shape], strict=True):
        assert ours.keys() == reference.keys() == {doc_id for doc_id, _, _ in DOCS}
        got = np.array([ours[i] for i in reference])
        want = np.array(list(reference.values()))
        # fp32 ONNX Runtime is the same computation; int8 weights move scores a little
        tolerance = {"rtol": 0.02} if engine == "onnx-int8" else {"atol": 1e-4}
        np.testing.assert_allclose(got, want, **tolerance)


def unexportable_copy(source: Path, target: Path) -> Path:
    """The custom-code checkpoint, set to run each row at its own length (like flash-attn).

    Its code then reads lengths back as Python numbers, which the ONNX exporter cannot
    trace: the export fails for this model on every engine that needs it.
    """
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "unpad_inputs": True}))
    return target


@pytest.mark.parametrize("engine", ["auto", "onnx", "onnx-int8"])
def test_a_model_the_exporter_cannot_trace_runs_in_pytorch_with_one_warning(
    shape_dirs, tiny_model_dir, torch_scores, tmp_path, engine, caplog, monkeypatch
) -> None:
    from colrank.models import device

    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)  # 'auto' tries ONNX first
    path = unexportable_copy(shape_dirs["custom-code"], tmp_path / "unpadded")
    with built(config_for(path, tiny_model_dir, engine, **JINA)) as index:
        scores = colbert_scores(index)
        index.add(["One more document after the first search."], ids=["later"])
        assert not index.encoders.encodes_with_onnx_runtime
    (warning,) = fallback_warnings(caplog)  # one, for indexing and searches together
    assert "could not export" in warning and "PyTorch" in warning
    # the same model code in PyTorch, so the same scores as the exportable copy in PyTorch
    for ours, reference in zip(scores, torch_scores["custom-code"], strict=True):
        np.testing.assert_allclose(
            [ours[i] for i in reference], list(reference.values()), atol=1e-5
        )


def dense_on(colbert: Path, target: Path, *, trust: bool) -> str:
    """A dense model (mean pooling) on the ColBERT checkpoint's own transformer weights."""
    from sentence_transformers import SentenceTransformer, models

    args = {"trust_remote_code": trust}
    transformer = models.Transformer(
        str(colbert), max_seq_length=128, model_args=args, tokenizer_args=args, config_args=args
    )
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(target))
    return str(target)


def assert_close(got, want, engine: str) -> None:
    """Equal to 1e-5 where the same float32 computation runs; near for int8 weights."""
    if engine != "onnx-int8":
        np.testing.assert_allclose(got, want, atol=1e-5)
        return
    cosine = (np.asarray(got) * np.asarray(want)).sum(axis=-1)
    assert cosine.min() > 0.9, cosine


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", SHAPES)
def test_one_call_serves_both_stages_only_on_the_colberts_own_transformer(
    shape_dirs, tmp_path, shape, engine
) -> None:
    models = SHAPES[shape].models
    dense = dense_on(shape_dirs[shape], tmp_path / "dense", trust=bool(models))
    with built(config_for(shape_dirs[shape], dense, engine, **models)) as index:
        joint = index.encoders.backbones
        assert joint is not None and joint.shared
        assert isinstance(joint.colbert_backbone, TorchBackbone) == (engine == "torch")
        # one call gives what each library's own encode gives (markers, lengths, expansion)
        texts = [text for _, text, _ in DOCS]
        for (vectors, tokens), (want_vectors, want_tokens) in [
            (
                index.encoders.encode_queries(QUERIES),
                (
                    index.dense_encoder.encode(QUERIES),
                    index.colbert_encoder.encode_queries(QUERIES),
                ),
            ),
            (
                index.encoders.encode_documents(texts),
                (index.dense_encoder.encode(texts), index.colbert_encoder.encode_documents(texts)),
            ),
        ]:
            assert_close(vectors, want_vectors, engine)
            for ours, theirs in zip(tokens, want_tokens, strict=True):
                assert ours.shape == theirs.shape  # the same tokens kept
                assert_close(ours, theirs, engine)
        rows: list[int] = []
        real = joint.colbert_backbone

        def counting(features):
            rows.append(features["input_ids"].shape[0])
            return real(features)

        joint.dense_backbone = joint.colbert_backbone = counting
        index.search(QUERIES[0], k=3)
        assert rows == [2]  # the dense query and the ColBERT query in one call


def test_a_colbert_checkpoint_beside_the_default_minilm_is_not_merged(shape_dirs) -> None:
    config = config_for(shape_dirs["bert"], "offline:minilm", "torch")
    with built(config) as index:
        assert index.encoders.backbones is None  # two transformers: the libraries encode
        assert index.search(QUERIES[0], k=3)


def test_model_code_runs_only_when_trusted(shape_dirs, tiny_model_dir) -> None:
    untrusted = {**JINA, "trust_remote_code": False}
    config = config_for(shape_dirs["custom-code"], tiny_model_dir, "torch", **untrusted)
    with (
        pytest.raises(ModelLoadError, match="trust_remote_code=True"),
        ColrankIndex(config) as index,
    ):
        index.add(["Paris is the capital of France."])


def test_a_saved_index_that_runs_model_code_opens_only_with_trust(
    shape_dirs, tiny_model_dir, tmp_path
) -> None:
    config = config_for(shape_dirs["custom-code"], tiny_model_dir, "torch", **JINA)
    with built(config) as index:
        index.save(tmp_path / "idx")
        expected = [h.id for h in index.search(QUERIES[0], k=3)]
    with pytest.raises(UntrustedModelError):
        ColrankIndex.load(tmp_path / "idx")
    with ColrankIndex.load(tmp_path / "idx", trust_models=True) as again:
        assert again.config.models.trust_remote_code
        assert [h.id for h in again.search(QUERIES[0], k=3)] == expected


def test_markers_the_files_do_not_record_are_reported_when_missing(shape_dirs, caplog) -> None:
    caplog.set_level(logging.WARNING)
    config = config_for(
        shape_dirs["custom-code"], "offline:minilm", "torch", trust_remote_code=True
    )
    model = ColbertEncoder.for_models(config.models, config.runtime).model
    # PyLate read Stanford's default markers from artifact.metadata: not in this vocabulary
    assert (model.query_prefix, model.document_prefix) == ("[unused0]", "[unused1]")
    assert not model.attend_to_expansion_tokens
    (warning,) = [r.getMessage() for r in caplog.records if "untrained" in r.getMessage()]
    assert "[QueryMarker]" in warning and "query_prefix" in warning
    caplog.clear()
    for name, shape in SHAPES.items():  # markers in the vocabulary: nothing to say
        config = config_for(shape_dirs[name], "offline:minilm", "torch", **shape.models)
        ColbertEncoder.for_models(config.models, config.runtime)
    assert not [r for r in caplog.records if "untrained" in r.getMessage()]


def test_a_stored_trust_remote_code_needs_trust_even_for_hub_ids() -> None:
    named = {"colbert": "jinaai/jina-colbert-v2"}
    check_trusted_models(named, trust_models=False)  # a hub id loaded without its code
    with pytest.raises(UntrustedModelError, match="trust_remote_code"):
        check_trusted_models(named, trust_models=False, remote_code=True)
    check_trusted_models(named, trust_models=True, remote_code=True)


def test_the_environment_turns_on_model_code_only_when_asked() -> None:
    assert ColrankConfig.from_env({"COLRANK_TRUST_REMOTE_CODE": "1"}).models.trust_remote_code
    assert not ColrankConfig.from_env({"COLRANK_TRUST_REMOTE_CODE": "0"}).models.trust_remote_code
    assert not ColrankConfig.from_env({}).models.trust_remote_code
