"""Token store: contiguous storage, deletes, compaction, memory-mapped persistence."""

from __future__ import annotations

import numpy as np
import pytest

from colrank import DimensionMismatchError, UnknownIdError
from colrank.store.local.token_store import TokenStore


def make(n: int, dim: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((int(rng.integers(1, 9)), dim)).astype(np.float32) for _ in range(n)
    ]


def test_roundtrip_fp16_and_order() -> None:
    store = TokenStore(dim=4, codec="float16")
    embs = make(5)
    store.add(list(range(5)), embs)
    got = store.get([3, 0, 4])
    for g, e in zip(got, [embs[3], embs[0], embs[4]], strict=True):
        assert g.dtype == np.float32  # decoded from float16 storage
        np.testing.assert_allclose(g, e, atol=2e-3)
    assert store.nbytes == store.n_tokens * 4 * 2
    assert len(store) == 5 and store.n_tokens == sum(len(e) for e in embs)


def test_delete_then_get_fails_and_compaction_frees_tokens() -> None:
    store = TokenStore(dim=4, codec="float32")
    embs = make(6)
    store.add(list(range(6)), embs)
    store.delete([1, 4])
    assert 1 not in store and 0 in store and len(store) == 4
    with pytest.raises(UnknownIdError):
        store.get([1])
    store.compact()
    assert store.n_tokens == sum(len(embs[i]) for i in (0, 2, 3, 5))
    np.testing.assert_array_equal(store.get([5])[0], embs[5])


def test_ids_must_grow_and_dims_must_match() -> None:
    store = TokenStore(dim=4)
    store.add([5], make(1))
    with pytest.raises(ValueError, match="increasing"):
        store.add([5], make(1))
    with pytest.raises(DimensionMismatchError):
        store.add([6], make(1, dim=3))


def test_many_adds_merge_segments_and_stay_correct() -> None:
    store = TokenStore(dim=4, codec="float32")
    all_embs = []
    for i in range(50):
        embs = make(2, seed=i)
        store.add([2 * i, 2 * i + 1], embs)
        all_embs += embs
    for i in (0, 37, 99):
        np.testing.assert_array_equal(store.get([i])[0], all_embs[i])


def test_save_load_memory_mapped_then_append(tmp_path) -> None:
    store = TokenStore(dim=4, codec="float32")
    embs = make(7)
    store.add(list(range(7)), embs)
    store.delete([2])
    store.save(tmp_path)
    loaded = TokenStore.load(tmp_path, mmap=True)
    assert isinstance(loaded._segments[0], np.memmap)
    assert len(loaded) == 6 and 2 not in loaded
    extra = make(2, seed=9)
    loaded.add([10, 11], extra)
    got = loaded.get([11, 6, 0])
    assert [len(g) for g in got] == [len(extra[1]), len(embs[6]), len(embs[0])]
    np.testing.assert_array_equal(got[0], extra[1])
    np.testing.assert_array_equal(got[1], embs[6])


@pytest.mark.parametrize(
    ("codec", "width", "tol"),
    [("float32", 64, 1e-7), ("float16", 32, 2e-3), ("bfloat16", 32, 8e-3), ("int8", 20, 2e-2)],
)
def test_codecs_round_trip_within_their_precision(tmp_path, codec, width, tol) -> None:
    embs = make(40, dim=16, seed=3)
    store = TokenStore(dim=16, codec=codec)
    store.add(list(range(40)), embs)
    assert store.codec.width == width
    store.save(tmp_path)
    loaded = TokenStore.load(tmp_path)
    for i in (0, 17, 39):
        np.testing.assert_allclose(loaded.get([i])[0], embs[i], atol=tol * np.abs(embs[i]).max())


@pytest.mark.parametrize("codec", ["pq8", "opq8"])
def test_product_quantizer_trains_saves_and_loads(tmp_path, codec) -> None:
    rng = np.random.default_rng(0)
    embs = [rng.standard_normal((50, 16)).astype(np.float32) for _ in range(300)]  # 15k tokens
    store = TokenStore(dim=16, codec=codec)
    store.add(list(range(300)), embs)
    assert store.codec.width == 8 and store.nbytes == 8 * 15000
    before = store.get([5])[0]
    rel_err = np.linalg.norm(before - embs[5]) / np.linalg.norm(embs[5])
    assert rel_err < 0.8  # lossy, but far better than chance (1.41 for random vectors)
    store.save(tmp_path)
    np.testing.assert_array_equal(TokenStore.load(tmp_path).get([5])[0], before)


def test_product_quantizer_needs_enough_tokens_to_train() -> None:
    from colrank import InvalidInputError

    with pytest.raises(InvalidInputError, match="at least 256 tokens"):
        TokenStore(dim=16, codec="pq8").add([0], make(1, dim=16))


def test_many_small_adds_join_only_small_segments(monkeypatch) -> None:
    """Appends are joined in bounded pieces (no copy of the whole store), and read back."""
    from colrank.store.local import token_store

    monkeypatch.setattr(token_store, "_MERGE_BYTES", 800)  # ten 5-token float32 documents
    store = TokenStore(dim=4, codec="float32")
    rng = np.random.default_rng(0)
    added = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(200)]
    for i, tokens in enumerate(added):
        store.add([i], [tokens])
    sizes = [segment.nbytes for segment in store._segments]
    assert max(sizes) <= 800 and len(sizes) <= 200 // 10 + token_store._MAX_LOOSE_SEGMENTS + 1
    for got, want in zip(store.get(list(range(200))), added, strict=True):
        np.testing.assert_array_equal(got, want)
