"""MaxSim numerics against PyLate and a naive reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pylate import rank

import colrank.rerank.maxsim as maxsim_module
from colrank import maxsim_ragged, maxsim_scores
from colrank.rerank.maxsim import pad_token_sets

from .conftest import CORPUS


def naive_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    total = 0.0
    for q in query:
        total += max(float(np.dot(q, d)) for d in doc)
    return total


def ragged(rng: np.random.Generator, n: int, dim: int, nonneg: bool) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(1, 40)), dim)).astype(np.float32)
        if nonneg:
            x = np.abs(x)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


@pytest.mark.parametrize("n_docs", [1, 7, 33])
def test_scores_equal_pylate_rerank(n_docs: int) -> None:
    # PyLate pads with zeros and no mask; with non-negative similarities that is exact.
    rng = np.random.default_rng(n_docs)
    query = np.abs(rng.standard_normal((32, 16)).astype(np.float32))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    docs = ragged(rng, n_docs, 16, nonneg=True)
    ids = [f"d{i}" for i in range(n_docs)]
    ours = maxsim_ragged(torch.from_numpy(query), docs).numpy()
    ref = rank.rerank(documents_ids=[ids], queries_embeddings=[query], documents_embeddings=[docs])[
        0
    ]
    ref_scores = {r["id"]: r["score"] for r in ref}
    np.testing.assert_allclose(ours, [ref_scores[i] for i in ids], atol=1e-4)


def test_scores_equal_pylate_on_real_model_embeddings(tiny_config) -> None:
    from colrank import ColbertEncoder

    enc = ColbertEncoder.load(tiny_config.models.colbert_model, tiny_config.runtime)
    docs = enc.encode_documents(
        ["a short one", "a somewhat longer document about cats and dogs", "x"]
    )
    query = enc.encode_queries(["cats"])[0]
    ours = maxsim_ragged(torch.from_numpy(query), docs).numpy()
    ref = rank.rerank(
        documents_ids=[[0, 1, 2]], queries_embeddings=[query], documents_embeddings=[docs]
    )[0]
    ref_scores = {r["id"]: r["score"] for r in ref}
    np.testing.assert_allclose(ours, [ref_scores[i] for i in range(3)], atol=1e-4)


def test_negative_similarities_never_match_padding() -> None:
    rng = np.random.default_rng(3)
    query = rng.standard_normal((8, 4)).astype(np.float32)
    docs = [rng.standard_normal((n, 4)).astype(np.float32) for n in (1, 5, 2, 9)]
    ours = maxsim_ragged(torch.from_numpy(query), docs).numpy()
    np.testing.assert_allclose(ours, [naive_maxsim(query, d) for d in docs], rtol=1e-5, atol=1e-5)


def test_many_queries_with_query_mask_and_block_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maxsim_module, "_MAX_BLOCK_ELEMENTS", 500)  # forces many doc blocks
    rng = np.random.default_rng(5)
    docs = [rng.standard_normal((n, 6)).astype(np.float32) for n in (3, 1, 7, 4, 2)]
    queries = [rng.standard_normal((n, 6)).astype(np.float32) for n in (2, 5, 3)]
    q_pad, q_mask = pad_token_sets(queries)
    d_pad, d_mask = pad_token_sets(docs)
    scores = maxsim_scores(q_pad, d_pad, d_mask, q_mask).numpy()
    expected = [[naive_maxsim(q, d) for d in docs] for q in queries]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_dimension_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="dimension"):
        maxsim_scores(torch.ones(2, 3), torch.ones(1, 2, 4))


def test_flat_scoring_equals_naive_reference() -> None:
    from colrank.rerank.maxsim import maxsim_flat

    rng = np.random.default_rng(11)
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 4, 2, 17, 3)]
    query = rng.standard_normal((5, 8)).astype(np.float32)
    lengths = np.array([len(d) for d in docs])
    scores = maxsim_flat(torch.from_numpy(query), np.concatenate(docs), lengths)
    np.testing.assert_allclose(scores, [naive_maxsim(query, d) for d in docs], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="lengths"):
        maxsim_flat(torch.from_numpy(query), np.concatenate(docs), lengths + 1)


@pytest.mark.parametrize("codec_name", ["float16", "bfloat16", "int8"])
@pytest.mark.parametrize("block_rows", [1, 5, 2048])
def test_flat_scoring_decodes_codes_block_by_block(codec_name: str, block_rows: int) -> None:
    from colrank.rerank.maxsim import maxsim_flat
    from colrank.store.codecs import make_codec

    rng = np.random.default_rng(12)
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (3, 1, 9, 4, 6)]
    query = torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32))
    lengths = np.array([len(d) for d in docs])
    codec = make_codec(codec_name, dim=8)
    codes = codec.encode(np.concatenate(docs))
    decoded = codec.decode(codes).numpy()  # the reference: decode everything, then score
    expected = [naive_maxsim(query.numpy(), d) for d in np.split(decoded, np.cumsum(lengths)[:-1])]
    scores = maxsim_flat(query, codes, lengths, decode=codec.decode, block_rows=block_rows)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="dimension"):
        maxsim_flat(query[:, :4], codes, lengths, decode=codec.decode)


def test_per_token_maxima_are_each_query_tokens_best_match() -> None:
    from colrank.rerank.maxsim import maxsim_flat

    rng = np.random.default_rng(13)
    docs = [rng.standard_normal((n, 6)).astype(np.float32) for n in (2, 7, 1)]
    query = rng.standard_normal((4, 6)).astype(np.float32)
    lengths = np.array([len(d) for d in docs])
    best = maxsim_flat(torch.from_numpy(query), np.concatenate(docs), lengths, per_token=True)
    assert best.shape == (3, 4)
    expected = np.stack([(query @ d.T).max(axis=1) for d in docs])  # (docs, query tokens)
    np.testing.assert_allclose(best, expected, rtol=1e-5, atol=1e-6)
    empty = maxsim_flat(torch.from_numpy(query), np.zeros((0, 6)), np.zeros(0), per_token=True)
    assert empty.shape == (0, 4)


def test_bfloat16_products_stay_within_bfloat16_rounding() -> None:
    from colrank.rerank.maxsim import maxsim_flat

    rng = np.random.default_rng(14)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    docs = [unit(rng.standard_normal((n, 64))).astype(np.float32) for n in (5, 40, 1, 90)]
    query = torch.from_numpy(unit(rng.standard_normal((8, 64))).astype(np.float32))
    lengths = np.array([len(d) for d in docs])
    exact = maxsim_flat(query, np.concatenate(docs), lengths, per_token=True)
    low = maxsim_flat(
        query, np.concatenate(docs), lengths, per_token=True, compute_dtype=torch.bfloat16
    )
    assert low.dtype == np.float32 and low.shape == exact.shape
    # bfloat16 keeps 8 significant bits: inputs and each product round by < 2^-8 relative
    assert np.abs(low - exact).max() < 0.01
    assert not np.array_equal(low, exact)  # it did multiply in bfloat16


def test_bfloat16_storage_scores_as_float16_storage_multiplied_in_bfloat16() -> None:
    """A bfloat16 store skips the cast, not the result: both round each row to bfloat16."""
    from colrank.rerank.maxsim import maxsim_flat
    from colrank.store.codecs import make_codec

    rng = np.random.default_rng(15)
    tokens = rng.standard_normal((60, 32)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    query = torch.from_numpy(rng.standard_normal((6, 32)).astype(np.float32))
    lengths = np.array([10, 1, 30, 19])
    half, brain = make_codec("float16", dim=32), make_codec("bfloat16", dim=32)
    half_codes = half.encode(tokens)
    # the stored float16 rows, rounded to bfloat16 as the float16 path does before multiplying
    brain_codes = brain.encode(half.decode(half_codes).numpy())
    scores = {
        name: maxsim_flat(
            query,
            codes,
            lengths,
            decode=lambda rows, c=codec: c.decode(rows, torch.bfloat16),
            compute_dtype=torch.bfloat16,
        )
        for name, codec, codes in (("half", half, half_codes), ("brain", brain, brain_codes))
    }
    np.testing.assert_array_equal(scores["half"], scores["brain"])
    assert brain.decode(brain_codes, torch.bfloat16).dtype == torch.bfloat16  # no cast made


class ThreadsSeen:
    """A read view that notes PyTorch's thread count whenever MaxSim decodes rows."""

    def __init__(self, view) -> None:
        self.view, self.threads = view, []

    def token_codes(self, iids):
        return self.view.token_codes(iids)

    def decode(self, codes, dtype=torch.float32):
        self.threads.append(torch.get_num_threads())
        return self.view.decode(codes, dtype)


def test_small_candidate_sets_can_be_scored_on_one_thread(tiny_index) -> None:
    from colrank.rerank.stored import score_stored

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    query = tiny_index.encoders.encode_queries(["yeast bread"])[1][0]
    try:
        with tiny_index.backend.read() as view:
            iids = np.array(sorted(view.iids_for([d for d, _, _ in CORPUS]).values()))
            rows = len(view.token_codes(iids.tolist())[0])
            results = {}
            for limit in (0, rows - 1, rows):
                spy = ThreadsSeen(view)
                results[limit] = score_stored(spy, query, iids, one_thread_rows=limit).total
                assert set(spy.threads) == ({1} if limit >= rows else {2}), limit
        np.testing.assert_allclose(results[0], results[rows], rtol=1e-6)  # same scores
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
