"""FAISS recall: exact / HNSW / IVF, deletes, filters inside the search, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from colrank.config import DenseIndexConfig
from colrank.store.local.dense_index import DenseIndex

KINDS = ["flat", "hnsw", "ivf"]


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(kind: str, n: int = 400, dim: int = 16) -> tuple[DenseIndex, np.ndarray, np.ndarray]:
    index = DenseIndex(dim, DenseIndexConfig(kind=kind, ivf_nprobe=64))
    vectors = unit(n, dim, 0)
    ids = np.arange(1000, 1000 + n)
    index.add(ids, vectors)
    return index, ids, vectors


@pytest.mark.parametrize("kind", KINDS)
def test_finds_itself(kind: str) -> None:
    index, ids, vectors = build(kind)
    _, found = index.search(vectors[:5], k=1)
    assert found[:, 0].tolist() == ids[:5].tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_ids_never_come_back(kind: str) -> None:
    index, ids, vectors = build(kind)
    gone = ids[:50]
    index.remove(gone)
    assert len(index) == len(ids) - 50
    _, found = index.search(vectors[:50], k=20)
    assert not set(found.ravel().tolist()) & set(gone.tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_filter_applies_before_top_k_and_fills_k(kind: str) -> None:
    index, ids, vectors = build(kind)
    allowed = ids[::37]  # 11 ids scattered across the index
    _, found = index.search(vectors[1:2], k=10, allowed=allowed)
    assert len(found[0]) == 10 and set(found[0].tolist()) <= set(allowed.tolist())
    # exact top-10 among the allowed
    exact = allowed[np.argsort(-(vectors[[i - 1000 for i in allowed]] @ vectors[1]))[:10]]
    assert found[0].tolist() == exact.tolist()


def test_filter_with_fewer_matches_than_k_returns_them_all() -> None:
    index, ids, vectors = build("flat")
    scores, found = index.search(vectors[:1], k=10, allowed=ids[:3])
    assert sorted(x for x in found[0].tolist() if x >= 0) == ids[:3].tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_results(kind: str, tmp_path) -> None:
    index, ids, vectors = build(kind)
    index.remove(ids[:10])
    before = index.search(vectors[10:20], k=5)
    index.save(tmp_path)
    loaded = DenseIndex.load(tmp_path, index.config)
    after = loaded.search(vectors[10:20], k=5)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_vectors_returns_the_stored_vectors_by_id(kind: str) -> None:
    index, ids, vectors = build(kind)
    picked = np.array([ids[7], ids[3], ids[399]])
    np.testing.assert_allclose(index.vectors(picked), vectors[[7, 3, 399]], atol=1e-6)
    assert index.vectors(np.array([], dtype=np.int64)).shape == (0, 16)


def test_hnsw_rebuilds_without_tombstones_after_many_deletes() -> None:
    index, ids, vectors = build("hnsw")
    index.remove(ids[:100])  # 25% > the 20% threshold: rebuilt from the live vectors
    assert index._tombstones == set() and index._index.ntotal == 300
    assert sorted(index.ids().tolist()) == ids[100:].tolist()
    np.testing.assert_allclose(index.vectors(ids[100:]), vectors[100:], atol=1e-6)
    _, found = index.search(vectors[100:110], k=1)
    assert found[:, 0].tolist() == ids[100:110].tolist()


def test_approximate_indexes_find_most_of_the_exact_top_10() -> None:
    """On 3,000 clustered vectors (where HNSW and IVF are approximate, unlike on a dozen)."""
    rng = np.random.default_rng(3)
    centres = unit(40, 32, 4)
    points = centres[rng.integers(0, 40, 3000)] + 0.15 * rng.standard_normal((3000, 32))
    vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    queries = vectors[rng.choice(3000, 50, replace=False)] + 0.05 * unit(50, 32, 5)
    ids = np.arange(3000)
    found = {}
    for kind in KINDS:
        index = DenseIndex(32, DenseIndexConfig(kind=kind))
        index.add(ids, vectors)
        found[kind] = index.search(queries, k=10)[1]
    for kind in ("hnsw", "ivf"):
        overlap = np.mean(
            [len(set(a) & set(b)) / 10 for a, b in zip(found[kind], found["flat"], strict=True)]
        )
        assert overlap >= 0.9, (kind, overlap)


@pytest.mark.parametrize("kind", KINDS)
def test_few_queries_search_on_one_faiss_thread_and_restore_the_count(kind, monkeypatch) -> None:
    import threading

    import faiss

    from colrank.store.local import query_threads

    index, ids, vectors = build(kind)
    before = faiss.omp_get_max_threads()
    seen: list[int] = []
    search = index._index.search  # what the FAISS call sees, recorded around the real one

    def recording(*args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return search(*args, **kwargs)

    monkeypatch.setattr(index._index, "search", recording)
    monkeypatch.setattr(query_threads, "FEW_QUERIES", 3)
    assert index.search(vectors[:1], k=1)[1][0, 0] == ids[0]
    index.search(vectors[:3], k=1)  # a batch keeps FAISS's threads
    assert seen == [1, before] and faiss.omp_get_max_threads() == before
    counts: list[int] = []  # OpenMP's count is per calling thread: another one is untouched

    def in_another_thread() -> None:
        worker = threading.Thread(target=lambda: counts.append(faiss.omp_get_max_threads()))
        worker.start()
        worker.join()

    in_another_thread()
    with query_threads.few_query_threads(1):
        in_another_thread()
    assert counts[0] == counts[1]
    with pytest.raises(RuntimeError), query_threads.few_query_threads(1):
        raise RuntimeError("inside")
    assert faiss.omp_get_max_threads() == before


def test_numpy_blas_runs_on_one_thread_until_the_last_few_query_search_ends() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    from colrank.store.local.query_threads import few_query_threads

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("numpy here has no BLAS library threadpoolctl can see")
    with threadpool_limits(2, user_api="blas"):  # a known count to come back to
        before = blas_threads()
        first, second = few_query_threads(1), few_query_threads(1)
        first.__enter__()
        second.__enter__()  # overlapping searches (two threads of an application)
        assert set(blas_threads()) == {1}
        first.__exit__(None, None, None)
        assert set(blas_threads()) == {1}  # the other search still runs
        second.__exit__(None, None, None)
        assert blas_threads() == before
        with few_query_threads(50):  # a batch keeps BLAS's threads
            assert blas_threads() == before
