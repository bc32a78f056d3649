"""One backbone call for both stages, and ONNX Runtime engines, against the libraries' encodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colrank import ColrankConfig, InvalidInputError
from colrank.models.backbone import TorchBackbone, run_parts
from colrank.models.device import DeviceFacts, one_torch_thread
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.models.pair import EncoderPair, encoding_runtime, resolve_engine

from .conftest import CORPUS, tiny_bert

DOCS = [text for _, text, _ in CORPUS] + ["word " * 300, "Short.", "Why? Because, well: it is."]
QUERIES = ["capital of germany", "energy", "why does bread rise when yeast is added?"]


def reading(config: ColrankConfig, inputs: str) -> ColrankConfig:
    """``config`` with its stand-in ColBERT reading text ``inputs`` (plain or marked)."""
    models = config.models.model_copy(update={"stand_in_inputs": inputs})
    return config.model_copy(update={"models": models})


def pair_for(config: ColrankConfig, engine: str) -> EncoderPair:
    runtime = config.runtime.model_copy(update={"engine": engine, "token_budget": 512})
    return EncoderPair(config.model_copy(update={"runtime": runtime}))


def library_outputs(config: ColrankConfig, pool_factor: int = 1):
    """What sentence-transformers' and PyLate's own encode return (the reference)."""
    dense = DenseEncoder.load(config.models.dense_model, config.runtime)
    colbert = ColbertEncoder.load(
        config.models.colbert_model,
        config.runtime,
        stand_in_inputs=config.models.stand_in_inputs,
    )
    return (
        dense.encode(DOCS, progress=False),
        colbert.encode_documents(DOCS, progress=False, pool_factor=pool_factor),
        dense.encode(QUERIES, progress=False),
        colbert.encode_queries(QUERIES),
    )


def assert_same(got, want, atol: float) -> None:
    vectors, tokens, q_vectors, q_tokens = got
    ref_vectors, ref_tokens, ref_q_vectors, ref_q_tokens = want
    np.testing.assert_allclose(vectors, ref_vectors, atol=atol)
    np.testing.assert_allclose(q_vectors, ref_q_vectors, atol=atol)
    pairs = [*zip(tokens, ref_tokens, strict=True), *zip(q_tokens, ref_q_tokens, strict=True)]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape  # same tokens kept (skiplist, padding, expansion)
        np.testing.assert_allclose(ours, theirs, atol=atol)


def encode(pair: EncoderPair, pool_factor: int = 1):
    vectors, tokens = pair.encode_documents(DOCS, progress=False, pool_factor=pool_factor)
    q_vectors, q_tokens = pair.encode_queries(QUERIES)
    return vectors, tokens, q_vectors, q_tokens


@pytest.mark.parametrize("inputs", ["plain", "marked"])
@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_one_call_for_a_shared_transformer_equals_the_two_library_encodes(
    tiny_config, engine, inputs
) -> None:
    config = reading(tiny_config, inputs)
    pair = pair_for(config, engine)
    assert not pair.encodes_with_onnx_runtime  # nothing loaded yet
    got = encode(pair)
    assert pair.backbones is not None and pair.backbones.shared
    assert pair.backbones.one_forward == (inputs == "plain")
    assert pair.encodes_with_onnx_runtime == (engine == "onnx")
    assert_same(got, library_outputs(config), atol=1e-5)


def counted_calls(pair: EncoderPair) -> list[tuple[int, int]]:
    """The shape of every backbone call ``pair`` makes from now on."""
    joint = pair.backbones
    calls: list[tuple[int, int]] = []
    real = joint.colbert_backbone

    def counting(features):
        calls.append(tuple(features["input_ids"].shape))
        return real(features)

    joint.dense_backbone = joint.colbert_backbone = counting
    return calls


DOCS_2 = ["Bread dough rises because yeast ferments sugars.", "Paris is the capital of France."]


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_a_shared_call_holds_both_inputs(tiny_config, engine) -> None:
    pair = pair_for(reading(tiny_config, "marked"), engine)
    calls = counted_calls(pair)
    pair.encode_documents(DOCS_2, progress=False)
    assert [rows for rows, _ in calls] == [4]  # one call: a dense and a ColBERT row per text
    calls.clear()
    # a short dense query beside its ColBERT query padded to query_length: still one call
    pair.encode_queries(QUERIES[:1])
    assert [rows for rows, _ in calls] == [2]
    calls.clear()
    pair.encode_queries(QUERIES, dense=False)
    assert [rows for rows, _ in calls] == [3]


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_plain_stand_in_inputs_take_one_forward_per_text(tiny_config, engine) -> None:
    pair = pair_for(reading(tiny_config, "plain"), engine)
    calls = counted_calls(pair)
    vectors, tokens = pair.encode_documents(DOCS_2, progress=False)
    assert [rows for rows, _ in calls] == [2]  # one row per text feeds both heads
    lengths = [len(ids) for ids in pair.dense.model.tokenizer(DOCS_2)["input_ids"]]
    # the dense input's own tokens, punctuation dropped: no marker
    assert [len(t) for t in tokens] == [n - 1 for n in lengths]
    calls.clear()
    q_vectors, q_tokens = pair.encode_queries(QUERIES)
    assert [rows for rows, _ in calls] == [3]
    query_lengths = [len(ids) for ids in pair.dense.model.tokenizer(QUERIES)["input_ids"]]
    assert [len(t) for t in q_tokens] == query_lengths  # no [MASK] expansion
    calls.clear()  # tokens alone (BM25 recall, rerank of outside documents): the same forward
    alone = [*pair.encode_queries(QUERIES, dense=False)[1], *pair.encode_document_tokens(DOCS_2)]
    assert [rows for rows, _ in calls] == [3, 2]
    for ours, both in zip(alone, [*q_tokens, *tokens], strict=True):
        np.testing.assert_allclose(ours, both, atol=1e-6)
    # the dense vectors are the marked way's: only the ColBERT input changed
    marked = pair_for(reading(tiny_config, "marked"), engine)
    np.testing.assert_allclose(vectors, marked.encode_documents(DOCS_2)[0], atol=1e-5)
    marked_vectors, marked_tokens = marked.encode_queries(QUERIES)
    np.testing.assert_allclose(q_vectors, marked_vectors, atol=1e-5)
    assert {len(t) for t in marked_tokens} == {marked.colbert.query_length}  # [MASK] padded


def features(rows: int, width: int) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.ones((rows, width), dtype=torch.long),
        "attention_mask": torch.ones((rows, width), dtype=torch.long),
    }


@pytest.mark.parametrize(
    ("shapes", "calls"),
    [
        ([(1, 15), (1, 32)], [(2, 32)]),  # a short dense query: padding is cheaper than a call
        ([(1, 49), (1, 32)], [(2, 49)]),
        ([(1, 200), (1, 32)], [(1, 200), (1, 32)]),  # a long one: padding 32 to 200 is not
        ([(16, 255), (16, 256)], [(32, 256)]),  # documents: the ColBERT marker adds one token
    ],
)
def test_parts_are_padded_into_one_call_unless_padding_costs_more(shapes, calls) -> None:
    seen: list[tuple[int, int]] = []

    def backbone(batch):
        seen.append(tuple(batch["input_ids"].shape))
        return torch.zeros((*batch["input_ids"].shape, 4))

    out = run_parts(backbone, [features(*shape) for shape in shapes])
    assert seen == calls
    assert [tuple(h.shape[:2]) for h in out] == shapes  # each part gets its own rows back


def test_pooled_tokens_match_the_library(tiny_config) -> None:
    pair = pair_for(tiny_config, "torch")
    _, tokens = pair.encode_documents(DOCS, progress=False, pool_factor=2)
    _, reference, _, _ = library_outputs(tiny_config, pool_factor=2)
    for ours, theirs in zip(tokens, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory) -> str:
    """A second tiny model with other weights (a dense model that is not the ColBERT's)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertModel

    root = tmp_path_factory.mktemp("other-model")
    tiny_bert(BertModel, root / "bert", seed=7, num_hidden_layers=1, max_position_embeddings=256)
    transformer = models.Transformer(str(root / "bert"), max_seq_length=64)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), "cls")
    SentenceTransformer(modules=[transformer, pooling]).save(str(root / "st"))
    return str(root / "st")


def test_different_transformers_get_a_call_each(tiny_config, other_model_dir) -> None:
    models = tiny_config.models.model_copy(update={"dense_model": other_model_dir})
    config = tiny_config.model_copy(update={"models": models})
    assert pair_for(config, "torch").backbones is None  # the libraries encode on their own
    pair = pair_for(config, "onnx")
    got = encode(pair)
    assert pair.backbones is not None and not pair.backbones.shared
    assert_same(got, library_outputs(config), atol=1e-5)  # CLS pooling, no Normalize module


def test_int8_stays_close_to_fp32(tiny_config) -> None:
    fp32 = encode(pair_for(tiny_config, "onnx"))
    int8 = encode(pair_for(tiny_config, "onnx-int8"))
    cosine = (fp32[0] * int8[0]).sum(axis=1)
    assert cosine.min() > 0.9, cosine
    assert [t.shape for t in int8[1]] == [t.shape for t in fp32[1]]


def test_the_exported_graph_is_cached(tiny_config) -> None:
    first = pair_for(tiny_config, "onnx").backbones.colbert_backbone
    stamp = first.path.stat().st_mtime_ns
    again = pair_for(tiny_config, "onnx").backbones.colbert_backbone
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp


def test_engine_choice(monkeypatch) -> None:
    from colrank.models import ort

    monkeypatch.setattr(ort, "onnx_runtime_available", lambda: True)
    plain_cpu, bf16_cpu = DeviceFacts(cpu_bf16=False), DeviceFacts(cpu_bf16=True)
    assert resolve_engine("auto", "cuda") == "torch"  # PyTorch on accelerators
    assert resolve_engine("torch", "cpu", facts=plain_cpu) == "torch"
    assert resolve_engine("auto", "cpu", facts=plain_cpu) == "onnx"
    assert resolve_engine("auto", "cpu", facts=bf16_cpu) == "torch"  # bfloat16, natively
    # fp32 asked for by name on a bfloat16 CPU: ONNX Runtime is the faster fp32 engine
    assert resolve_engine("auto", "cpu", "float32", facts=bf16_cpu) == "onnx"


def test_auto_runs_pytorch_in_bfloat16_where_the_cpu_multiplies_it(monkeypatch) -> None:
    from colrank.models import ort

    monkeypatch.setattr(ort, "onnx_runtime_available", lambda: True)
    cpu = ColrankConfig.offline().runtime.model_copy(update={"device": "cpu"})
    bf16 = encoding_runtime(cpu, DeviceFacts(cpu_bf16=True))
    assert (bf16.engine, bf16.dtype) == ("torch", "bfloat16")
    plain = encoding_runtime(cpu, DeviceFacts(cpu_bf16=False))
    assert (plain.engine, plain.dtype) == ("onnx", "auto")
    named = cpu.model_copy(update={"engine": "torch"})  # an engine by name keeps its dtype
    assert encoding_runtime(named, DeviceFacts(cpu_bf16=True)).dtype == "auto"
    assert (
        encoding_runtime(
            cpu.model_copy(update={"device": "cuda"}),
            DeviceFacts(cuda_available=True, cpu_bf16=True),
        ).dtype
        == "auto"
    )  # accelerators keep resolve_dtype's choice


def test_an_auto_pair_on_a_bfloat16_cpu_loads_bfloat16_weights(tiny_config, monkeypatch) -> None:
    from colrank.models import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    runtime = tiny_config.runtime.model_copy(update={"dtype": "auto"})
    pair = pair_for(tiny_config.model_copy(update={"runtime": runtime}), "auto")
    assert pair.engine == "torch"
    assert next(pair.dense.model.parameters()).dtype == torch.bfloat16
    vectors, tokens, _, _ = encode(pair)
    ref_vectors, ref_tokens, _, _ = library_outputs(tiny_config)  # PyTorch fp32
    assert (vectors * ref_vectors).sum(axis=1).min() > 0.99  # bfloat16 rounding, same vectors
    assert [t.shape for t in tokens] == [t.shape for t in ref_tokens]


def test_an_onnx_engine_without_onnx_runtime_says_what_to_install(monkeypatch) -> None:
    from colrank.models import ort

    monkeypatch.setattr(ort, "onnx_runtime_available", lambda: False)  # a machine without it
    assert resolve_engine("auto", "cpu") == "torch"
    with pytest.raises(InvalidInputError, match=r"colrank\[onnx\]"):
        resolve_engine("onnx-int8", "cpu")


def test_auto_falls_back_to_pytorch_when_the_export_cannot_run(tiny_config, monkeypatch) -> None:
    from colrank.models import ort

    def broken(*args, **kwargs):
        raise PermissionError("read-only cache")

    from colrank.models import device

    monkeypatch.setattr(ort, "onnx_runtime_available", lambda: True)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)  # 'auto' is ONNX
    monkeypatch.setattr(ort, "graph_for", broken)  # e.g. no writable cache folder
    pair = pair_for(tiny_config, "auto")
    assert_same(encode(pair), library_outputs(tiny_config), atol=1e-5)  # PyTorch instead
    assert isinstance(pair.backbones.colbert_backbone, TorchBackbone)
    with pytest.raises(PermissionError):  # asked for by name: the error is the user's to see
        pair_for(tiny_config, "onnx").backbones  # noqa: B018


def test_one_torch_thread_restores_the_thread_count_even_on_error() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []

    def fail_inside() -> None:
        with one_torch_thread():
            seen.append(torch.get_num_threads())
            raise RuntimeError("inside")

    try:
        with pytest.raises(RuntimeError):
            fail_inside()
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
