"""The MUVERA first stage: its encodings, its recall, and its index kept in step."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from colrank import ColrankIndex, MuveraConfig, UnsupportedStageError
from colrank.store.base import DocumentRows, WriteBatch
from colrank.store.fde import FdeEncoder
from colrank.store.local.backend import LocalBackend
from tests.conftest import CORPUS, run_concurrently

SMALL = MuveraConfig(k_sim=3, d_proj=8, r_reps=6)


def reference_fde(enc: FdeEncoder, tokens: np.ndarray, document: bool) -> np.ndarray:
    """The encoding written out token by token and bucket by bucket (the paper's steps)."""
    k, block = enc.k_sim, enc.block
    blocks = []
    for rep in range(enc.r_reps):
        planes = enc.simhash[:, rep * k : (rep + 1) * k]
        if enc.projection is None:
            project = np.eye(enc.token_dim, dtype=np.float32)
        else:
            project = enc.projection[:, rep * block : (rep + 1) * block]
        bucket_of = [sum(int(float(x @ planes[:, j]) > 0) << j for j in range(k)) for x in tokens]
        cells = np.zeros((enc.buckets, block))
        for b in range(enc.buckets):
            members = [t for t, found in enumerate(bucket_of) if found == b]
            if members:
                total = sum(tokens[t] @ project for t in members)
                cells[b] = total / len(members) if document else total
            elif document and len(tokens):
                hamming = [bin(found ^ b).count("1") for found in bucket_of]
                cells[b] = tokens[int(np.argmin(hamming))] @ project
        blocks.append(cells.ravel())
    full = np.concatenate(blocks)
    if enc.sketch is None:
        return full
    where, sign = enc.sketch
    out = np.zeros(enc.dim)
    for i, value in enumerate(full):
        out[where[i]] += sign[i] * value
    return out


@pytest.mark.parametrize(
    "settings",
    [
        {"k_sim": 3, "d_proj": 4, "r_reps": 3},
        {"k_sim": 2, "d_proj": None, "r_reps": 2},
        {"k_sim": 4, "d_proj": 3, "r_reps": 2, "final_dim": 20},
        {"k_sim": 0, "d_proj": 2, "r_reps": 2},
    ],
)
def test_encodings_match_the_reference(settings: dict) -> None:
    rng = np.random.default_rng(1)
    enc = FdeEncoder(token_dim=6, seed=3, **settings)
    sets = [rng.standard_normal((n, 6)).astype(np.float32) for n in (1, 5, 2, 9, 0)]
    for document in (True, False):
        got = enc.encode_documents(sets) if document else enc.encode_queries(sets)
        want = np.stack([reference_fde(enc, s, document) for s in sets])
        assert got.shape == (len(sets), enc.dim)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_encoding_in_chunks_matches_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    enc = FdeEncoder(token_dim=8, k_sim=3, d_proj=4, r_reps=4)
    sets = [rng.standard_normal((int(n), 8)).astype(np.float32) for n in rng.integers(1, 40, 30)]
    whole = enc.encode_documents(sets)
    monkeypatch.setattr("colrank.store.fde.CHUNK_ELEMENTS", 500)  # a few sets per step
    np.testing.assert_allclose(enc.encode_documents(sets), whole, atol=1e-6)


def _clouds(rng: np.random.Generator, count: int, sizes: tuple[int, int], dim: int = 16):
    centers = rng.standard_normal((8, dim))
    out = []
    for _ in range(count):
        n = int(rng.integers(*sizes))
        points = centers[rng.integers(0, 8, n)] + 0.5 * rng.standard_normal((n, dim))
        out.append((points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32))
    return out


def _chamfer(query: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
    return np.array([(query @ d.T).max(axis=1).sum() for d in docs])


def test_inner_products_follow_chamfer_similarity() -> None:
    rng = np.random.default_rng(0)
    docs, queries = _clouds(rng, 200, (5, 30)), _clouds(rng, 20, (6, 7))
    enc = FdeEncoder(16, k_sim=3, d_proj=8, r_reps=20)
    fde_docs, fde_queries = enc.encode_documents(docs), enc.encode_queries(queries)
    kept = [
        spearmanr(_chamfer(q, docs), fde_docs @ f).statistic
        for q, f in zip(queries, fde_queries, strict=True)
    ]
    shuffled = [
        spearmanr(_chamfer(q, docs), rng.permutation(fde_docs @ f)).statistic
        for q, f in zip(queries, fde_queries, strict=True)
    ]
    assert np.mean(kept) > 0.5 and min(kept) > 0.3
    assert abs(np.mean(shuffled)) < 0.1  # the control: no order, no correlation


def _backend_with(docs: list[np.ndarray], ids: list[str] | None = None) -> LocalBackend:
    backend = LocalBackend(codec="float32")
    ids = ids or [f"d{i}" for i in range(len(docs))]
    vectors = np.eye(len(docs), 4, dtype=np.float32)  # the dense stage takes no part
    rows = DocumentRows(
        ids, [f"text {i}" for i in ids], [{"n": i} for i in range(len(ids))], vectors, docs
    )
    backend.write(WriteBatch(upserts=rows))
    return backend


def _muvera_ids(backend: LocalBackend, queries, n: int, config=SMALL, filter=None):  # noqa: A002
    with backend.read() as view:
        _, iids = view.fde_search(queries, n, filter, config)
        return [[d.id for d in view.documents(row[row >= 0].tolist())] for row in iids]


def test_recall_on_a_small_corpus() -> None:
    rng = np.random.default_rng(5)
    docs = _clouds(rng, 300, (10, 40))
    picked = rng.choice(len(docs), 40, replace=False)
    queries = []
    for p in picked:  # a query: a few of one document's tokens, moved a little
        tokens = docs[p][rng.choice(len(docs[p]), 5, replace=False)]
        tokens = tokens + 0.1 * rng.standard_normal(tokens.shape).astype(np.float32)
        queries.append(tokens / np.linalg.norm(tokens, axis=1, keepdims=True))
    backend = _backend_with(docs)
    found = _muvera_ids(backend, queries, 30, MuveraConfig(k_sim=4, d_proj=8, r_reps=20))
    best = [f"d{int(np.argmax(_chamfer(q, docs)))}" for q in queries]
    recall = np.mean([b in f for b, f in zip(best, found, strict=True)])
    assert recall >= 0.9, recall


def test_index_stays_in_step_with_writes_and_a_reopen(tmp_path) -> None:
    rng = np.random.default_rng(3)
    docs = _clouds(rng, 60, (3, 12))
    queries = _clouds(rng, 5, (4, 5))
    backend = _backend_with(docs[:40])
    _muvera_ids(backend, queries, 10)  # built here, from the stored tokens
    replaced = DocumentRows(
        ["d3", "x1"], ["t", "t"], [{}, {}], np.ones((2, 4), "float32"), docs[40:42]
    )
    backend.write(WriteBatch(upserts=replaced, on_conflict="replace", deletes=["d7", "d8"]))
    backend.write(
        WriteBatch(
            upserts=DocumentRows(["x2"], ["t"], [{}], np.ones((1, 4), "float32"), docs[42:43])
        )
    )
    live = {f"d{i}": docs[i] for i in range(40) if i not in (3, 7, 8)}
    live.update({"d3": docs[40], "x1": docs[41], "x2": docs[42]})
    fresh = _backend_with(list(live.values()), list(live))
    assert _muvera_ids(backend, queries, 10) == _muvera_ids(fresh, queries, 10)
    backend.save(tmp_path, {})
    reopened, manifest = LocalBackend.load(tmp_path)
    assert manifest["store"]["muvera"] == SMALL.model_dump(mode="json")  # saved, not rebuilt
    assert _muvera_ids(reopened, queries, 10) == _muvera_ids(fresh, queries, 10)


def test_other_settings_rebuild_and_a_filter_applies() -> None:
    rng = np.random.default_rng(4)
    docs = _clouds(rng, 30, (3, 12))
    backend = _backend_with(docs)
    query = _clouds(rng, 1, (4, 5))
    wider = MuveraConfig(k_sim=4, d_proj=None, r_reps=3)
    with backend.read() as view:
        small, _ = view.fde_search(query, 3, None, SMALL)
        other, _ = view.fde_search(query, 3, None, wider)
    assert not np.allclose(small, other)
    found = _muvera_ids(backend, query, 5, filter={"n": {"$lt": 4}})
    assert sorted(found[0]) == ["d0", "d1", "d2", "d3"]


def test_search_with_muvera_needs_no_dense_model(tiny_config, tmp_path) -> None:
    config = tiny_config.model_copy(update={"muvera": SMALL})
    index = ColrankIndex(config)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    index.upsert(["Lyon is a city in France."], ids=["geo-lyon"])
    index.delete(["food-pasta"])
    index.save(tmp_path)
    reopened = ColrankIndex.load(tmp_path, config)
    timings: dict[str, float] = {}
    hits = reopened.search("capital of France", k=5, first_stage="muvera", timings=timings)
    assert len(hits) == 5 and "food-pasta" not in [h.id for h in hits]
    assert "muvera" in timings and "dense_encode" not in timings and "faiss" not in timings
    for hit in hits:  # the calibrated score of a ColBERT-only search: MaxSim per token
        assert hit.dense_score is None and hit.bm25_score is None
    every = reopened.candidate_scores(["capital of France"], first_stage="muvera")[0]
    assert len(every.ids) == len(reopened)  # 100 candidates: the whole small collection
    best = np.sort(every.final_scores)[::-1][:5]
    np.testing.assert_allclose(best, [h.score for h in hits], rtol=1e-6)
    tokens = [h.colbert_score / h.score for h in hits]  # MaxSim / its per-token mean
    np.testing.assert_allclose(tokens, round(tokens[0]), rtol=1e-4)


def test_postgres_refuses_muvera_with_a_typed_error(tiny_config, postgres_url) -> None:
    index = ColrankIndex.open(postgres_url, "muvera_refused", tiny_config)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts[:3]), [dict(m) for m in metas[:3]], list(ids[:3]))
    with pytest.raises(UnsupportedStageError, match="muvera"):
        index.search("capital", k=2, first_stage="muvera")
    assert len(index.search("capital", k=2)) == 2  # nothing else changed
    index.close()


def test_searches_and_writes_side_by_side_keep_the_index_in_step() -> None:
    rng = np.random.default_rng(6)
    pool = _clouds(rng, 400, (3, 10))
    queries = _clouds(rng, 3, (4, 5))
    backend = _backend_with(pool[:20])
    done = {"searches": 0, "writes": 0}

    def search(step: int) -> None:
        with backend.read() as view:
            _, iids = view.fde_search(queries, 10, None, SMALL)
            for row in iids:  # every id found is a live document of this view
                live = row[row >= 0].tolist()
                assert len(view.documents(live)) == len(live) == min(10, view.count())
        done["searches"] += 1

    def write(step: int) -> None:
        doc = DocumentRows(
            [f"w{step}"], ["t"], [{}], np.ones((1, 4), "float32"), [pool[20 + step % 380]]
        )
        backend.write(WriteBatch(upserts=doc, deletes=[f"w{step - 3}"] if step > 3 else []))
        done["writes"] += 1

    assert not run_concurrently(2.0, search, search, write)
    assert done["searches"] > 0 and done["writes"] > 0
    with backend.read() as view:
        ids = view.ids()
        found = view.iids_for(ids)
        tokens = view.token_embeddings([found[i] for i in ids])
    fresh = _backend_with(tokens, ids)
    assert _muvera_ids(backend, queries, 10) == _muvera_ids(fresh, queries, 10)


def test_rerank_with_the_muvera_first_stage_orders_by_maxsim(tiny_config) -> None:
    index = ColrankIndex(tiny_config.model_copy(update={"muvera": SMALL}))
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    hits = index.rerank("capital of France", list(texts[:4]), first_stage="muvera")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:  # MaxSim per query token, as a muvera search scores them
        assert hit.colbert_score is not None and hit.dense_score is None
