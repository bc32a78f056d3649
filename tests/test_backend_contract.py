"""The storage backend contract: every backend must pass this one suite.

Synthetic embeddings (no model), so the suite is fast and says nothing about quality.
A backend joins by adding a factory to ``BACKENDS``: it returns a fresh, empty backend,
a ``reopen`` function that gives the same collection as a new process would see it (for
the local backend: save, then load the snapshot; for PostgreSQL: connect again), and a
``break_mid_write`` function that makes the next write fail after part of it is applied.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from colrank.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    InvalidInputError,
    UnknownIdError,
)
from colrank.store.base import DocumentRows, StorageBackend, WriteBatch
from colrank.store.local.backend import LocalBackend
from colrank.store.local.docstore import DocStore

from .conftest import multi_host_url, run_concurrently

DENSE_DIM, TOKEN_DIM = 8, 4
Reopen = Callable[[StorageBackend], StorageBackend]
Break = Callable[[pytest.MonkeyPatch], None]


def _broken(*args, **kwargs):
    raise OSError("disk full")


def _local(request, tmp_path: Path) -> tuple[StorageBackend, Reopen, Break]:
    def reopen(backend: StorageBackend) -> StorageBackend:
        backend.save(tmp_path / "idx", {})
        return LocalBackend.load(tmp_path / "idx")[0]

    def break_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
        # the document store fails after FAISS, the tokens and BM25 took the batch
        monkeypatch.setattr(DocStore, "add", _broken)

    # float32 tokens: the tests read each document's version back from its token values
    return LocalBackend(codec="float32"), reopen, break_mid_write


def _server_backend(request, url: str, **options) -> tuple[StorageBackend, Reopen, Break]:
    from colrank.store.postgres import schema
    from colrank.store.postgres.backend import PostgresBackend

    name = f"c{zlib.crc32(request.node.nodeid.encode())}"
    backend = PostgresBackend(url, name, pool_size=6, **options)
    backend.drop()
    request.addfinalizer(backend.close)
    request.addfinalizer(backend.drop)

    def reopen(old: StorageBackend) -> StorageBackend:
        again = PostgresBackend(url, name)  # a spread collection needs only its coordinator
        request.addfinalizer(again.close)
        return again

    def break_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
        # the inserts fail after the replaced rows were deleted in the same transaction
        monkeypatch.setattr(schema, "insert_rows", _broken)

    return backend, reopen, break_mid_write


def _postgres(request, tmp_path: Path) -> tuple[StorageBackend, Reopen, Break]:
    return _server_backend(request, request.getfixturevalue("postgres_url"))


def _postgres_replicated(request, tmp_path: Path) -> tuple[StorageBackend, Reopen, Break]:
    """Writes on the primary, reads on the standby (each process reads its own writes)."""
    return _server_backend(request, multi_host_url(*request.getfixturevalue("postgres_replicated")))


def _postgres_spread(request, tmp_path: Path) -> tuple[StorageBackend, Reopen, Break]:
    """Documents and postings partitioned over three servers."""
    coordinator, shards = request.getfixturevalue("postgres_spread")
    return _server_backend(request, coordinator.url, shards=[s.url for s in shards])


BACKENDS = {
    "local": _local,
    "postgres": _postgres,
    "postgres-replicated": _postgres_replicated,
    "postgres-spread": _postgres_spread,
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path) -> tuple[StorageBackend, Reopen]:
    backend, reopen, breaker = BACKENDS[request.param](request, tmp_path)
    request.node.break_mid_write = breaker
    return backend, reopen


def rows(ids: list[str], version: int = 0, **meta) -> DocumentRows:
    """Documents whose text, metadata and embeddings all say which id and version they are."""
    vectors, tokens = [], []
    for doc_id in ids:
        rng = np.random.default_rng(zlib.crc32(f"{doc_id}/{version}".encode()))
        v = rng.normal(size=DENSE_DIM).astype(np.float32)
        vectors.append(v / np.linalg.norm(v))
        tokens.append(np.full((2 + len(doc_id) % 4, TOKEN_DIM), version + 1.0, np.float32))
    return DocumentRows(
        list(ids),
        [f"text of {i} version {version}" for i in ids],
        [{"id": i, "version": version, "n": int(i.strip("d") or 0), **meta} for i in ids],
        np.stack(vectors),
        tokens,
    )


def state(backend: StorageBackend) -> dict[str, str]:
    """User id -> stored text, read through one view."""
    with backend.read() as view:
        ids = view.ids()
        iids = view.iids_for(ids)
        return {d.id: d.text for d in view.documents([iids[i] for i in ids])}


def test_add_get_and_ids(store) -> None:
    backend, _ = store
    result = backend.write(WriteBatch(upserts=rows(["d1", "d2", "d3"])), dense_model="m")
    assert result.added == ["d1", "d2", "d3"] and not result.replaced
    with backend.read() as view:
        assert view.count() == 3 and view.ids() == ["d1", "d2", "d3"]
        iids = view.iids_for(["d3", "d1", "nope"])
        assert set(iids) == {"d1", "d3"}
        docs = view.documents([iids["d3"], iids["d1"]])
        assert [d.id for d in docs] == ["d3", "d1"] and docs[0].metadata["n"] == 3
        _, lengths = view.token_codes([iids["d1"]])
        assert lengths.tolist() == [2 + len("d1") % 4]
    assert backend.info.dense_model == "m" and backend.info.dense_dim == DENSE_DIM


def test_upsert_replaces_or_refuses_whole(store) -> None:
    backend, _ = store
    backend.write(WriteBatch(upserts=rows(["d1", "d2"])))
    with pytest.raises(DuplicateIdError):
        backend.write(WriteBatch(upserts=rows(["d3", "d2"], version=1)))
    assert state(backend) == {"d1": "text of d1 version 0", "d2": "text of d2 version 0"}
    result = backend.write(WriteBatch(upserts=rows(["d3", "d2"], 1), on_conflict="replace"))
    assert result.added == ["d3"] and result.replaced == ["d2"]
    assert state(backend)["d2"] == "text of d2 version 1" and len(state(backend)) == 3
    with backend.read() as view:  # the replaced document's tokens are the new ones
        codes, lengths = view.token_codes([view.iids_for(["d2"])["d2"]])
        assert float(view.decode(codes).mean()) == pytest.approx(2.0, abs=1e-2)


def test_delete_missing_error_or_ignore(store) -> None:
    backend, _ = store
    backend.write(WriteBatch(upserts=rows(["d1", "d2", "d3"])))
    with pytest.raises(UnknownIdError):
        backend.write(WriteBatch(deletes=["d1", "nope"]))
    assert len(state(backend)) == 3
    result = backend.write(WriteBatch(deletes=["d1", "nope"], missing="ignore"))
    assert result.deleted == ["d1"] and set(state(backend)) == {"d2", "d3"}
    with backend.read() as view:
        _, found = view.dense_search(np.ones((1, DENSE_DIM), np.float32), 10, None)
        assert len([i for i in found[0] if i >= 0]) == 2


def test_one_batch_adds_and_deletes_together(store) -> None:
    backend, _ = store
    backend.write(WriteBatch(upserts=rows(["d1", "d2"])))
    backend.write(WriteBatch(upserts=rows(["d3"]), deletes=["d1"]))
    assert set(state(backend)) == {"d2", "d3"}


def test_wrong_dimensions_are_refused(store) -> None:
    backend, _ = store
    backend.write(WriteBatch(upserts=rows(["d1"])))
    bad = rows(["d2"])
    wide = DocumentRows(bad.ids, bad.texts, bad.metadatas, np.ones((1, 3), np.float32), bad.tokens)
    with pytest.raises(DimensionMismatchError):
        backend.write(WriteBatch(upserts=wide))
    assert set(state(backend)) == {"d1"}


def test_filters_fill_k_in_dense_and_lexical_recall(store) -> None:
    backend, _ = store
    ids = [f"d{i}" for i in range(60)]
    backend.write(WriteBatch(upserts=rows(ids)))
    wanted = {"n": {"$gte": 50}}  # 10 of 60, wherever they rank without the filter
    with backend.read() as view:
        for q in np.random.default_rng(1).normal(size=(5, DENSE_DIM)).astype(np.float32):
            scores, found = view.dense_search(q[None, :], 8, wanted)
            docs = view.documents(found[0].tolist())
            assert len(docs) == 8 and all(d.metadata["n"] >= 50 for d in docs)
            assert np.all(np.diff(scores[0]) <= 1e-6)  # best first
        lexical = view.lexical_search("text version", 8, wanted)
        assert len(lexical.iids) == 8
        assert all(d.metadata["n"] >= 50 for d in view.documents(lexical.iids.tolist()))
        _, none = view.dense_search(np.ones((1, DENSE_DIM), np.float32), 5, {"n": -1})
        assert len([i for i in none[0] if i >= 0]) == 0


def test_reopen_keeps_everything(store) -> None:
    backend, reopen = store
    backend.write(WriteBatch(upserts=rows([f"d{i}" for i in range(10)])), colbert_model="c")
    backend.write(WriteBatch(upserts=rows(["d3"], 1), deletes=["d5"], on_conflict="replace"))
    q = np.random.default_rng(2).normal(size=(1, DENSE_DIM)).astype(np.float32)
    with backend.read() as view:
        before = view.dense_search(q, 5, None)
        before_ids = [d.id for d in view.documents(before[1][0].tolist())]
        lexical = view.lexical_search("text of d3 version 1", 3, None)
    again = reopen(backend)
    assert state(again) == state(backend) and again.info.colbert_model == "c"
    with again.read() as view:
        after = view.dense_search(q, 5, None)
        assert [d.id for d in view.documents(after[1][0].tolist())] == before_ids
        np.testing.assert_allclose(after[0], before[0], rtol=1e-5)
        np.testing.assert_allclose(
            view.lexical_search("text of d3 version 1", 3, None).scores, lexical.scores
        )
    again.write(WriteBatch(upserts=rows(["d99"])))  # ids go on being allocated
    assert "d99" in state(again) and len(state(again)) == 10


def test_a_store_failing_mid_write_leaves_the_previous_state(store, request, monkeypatch) -> None:
    backend, _ = store
    backend.write(WriteBatch(upserts=rows(["d1", "d2"])))
    before = state(backend)
    request.node.break_mid_write(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        backend.write(WriteBatch(upserts=rows(["d2", "d3"], 1), on_conflict="replace"))
    monkeypatch.undo()
    assert state(backend) == before
    with backend.read() as view:
        _, found = view.dense_search(np.ones((1, DENSE_DIM), np.float32), 10, None)
        assert sorted(i for i in found[0] if i >= 0) == sorted(view.iids_for(["d1", "d2"]).values())


def test_readers_see_one_state_while_a_writer_replaces_and_deletes(store) -> None:
    """4 readers + 1 writer for a bounded time: no error, every hit's text is its id's."""
    backend, _ = store
    ids = [f"d{i}" for i in range(40)]
    backend.write(WriteBatch(upserts=rows(ids)))
    reads = [0]

    def read(step: int) -> None:
        q = np.random.default_rng(step).normal(size=(1, DENSE_DIM)).astype(np.float32)
        with backend.read() as view:
            _, found = view.dense_search(q, 10, None)
            iids = [i for i in found[0].tolist() if i >= 0]
            codes, lengths = view.token_codes(iids)
            docs = view.documents(iids)
            tokens = view.decode(codes).numpy()
        start = 0
        for doc, n in zip(docs, lengths, strict=True):
            version = doc.metadata["version"]
            assert doc.text == f"text of {doc.metadata['id']} version {version}"
            assert np.allclose(tokens[start : start + n], version + 1.0, atol=1e-2)
            start += n
        reads[0] += 1

    writes = [0]

    def write(version: int) -> None:
        chosen = [ids[(version * 7 + j) % len(ids)] for j in range(3)]
        backend.write(WriteBatch(upserts=rows(chosen, version), on_conflict="replace"))
        backend.write(WriteBatch(deletes=[chosen[0]]))
        backend.write(WriteBatch(upserts=rows([chosen[0]], version)))
        writes[0] = version

    errors = run_concurrently(2.0, read, read, read, read, write)
    assert not errors, errors[:3]
    assert reads[0] > 10 and writes[0] >= 2  # both sides ran, several rounds each
    assert len(state(backend)) == len(ids)
    last = ids[(writes[0] * 7) % len(ids)]  # the writer's last round is what is stored
    assert state(backend)[last] == f"text of {last} version {writes[0]}"


def test_settings_and_saving_through_the_protocol(store, request, tmp_path) -> None:
    backend, reopen = store
    with pytest.raises(InvalidInputError, match=r"empty|nothing to save"):
        backend.save(tmp_path / "empty", {})  # an empty collection has nothing to save
    backend.write(WriteBatch(upserts=rows(["d1"])), dense_model="m", colbert_model="c")
    backend.save_config({"search": {"k": 1}})  # kept now (database) or at save (local)
    if request.node.callspec.params["store"].startswith("postgres"):
        with pytest.raises(InvalidInputError, match="nothing to save"):
            backend.save(tmp_path / "idx", {})
        assert backend.manifest(refresh=True)["config"] == {"search": {"k": 1}}  # type: ignore[attr-defined]
    else:
        root = backend.save(tmp_path / "idx", {"config": {"search": {"k": 1}}})
        assert (root / "CURRENT").is_file()
    assert state(reopen(backend)) == {"d1": "text of d1 version 0"}
