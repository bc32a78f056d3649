"""PostgreSQL past one machine, on live servers: a primary with a streaming hot standby,
and a collection spread over three servers (postgres_fdw partitions).

The backend contract suite (test_backend_contract.py) also runs on both layouts; this
file checks what is particular to them through ``ColrankIndex``: the standby answers as
the primary does, a process reads its own writes, outages give typed errors in bounded
time and end as soon as the server is back, and the spread collection answers exactly as
one server holding everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest

from colrank import ColrankIndex, StoreUnavailableError
from colrank.store.postgres.backend import PostgresBackend

from .conftest import CORPUS, multi_host_url, start_postgres, stop_postgres

QUERIES = [
    "capital of germany",
    "energy in cells",
    "late interaction retrieval",
    "bread dough yeast sugars",
]
FILTERS = [None, {"topic": "geo"}, {"year": {"$gte": 2019}}, {"topic": {"$in": ["bio", "ir"]}}]


@pytest.fixture
def collection(request) -> str:
    return f"s{zlib.crc32(request.node.nodeid.encode())}"


def fill(index: ColrankIndex) -> None:
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))


def top(index: ColrankIndex, query: str, **kwargs) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in index.search(query, k=10, candidates=20, **kwargs)]


def assert_same_answers(a: ColrankIndex, b: ColrankIndex) -> None:
    """Same top-10 ids in the same order, scores within 1e-5, for the default search and
    dense -> ColBERT, with and without filters."""
    for query in QUERIES:
        for filter_ in FILTERS:
            for kwargs in ({}, {"first_stage": "dense"}):
                want = top(a, query, filter=filter_, **kwargs)
                got = top(b, query, filter=filter_, **kwargs)
                assert [i for i, _ in got] == [i for i, _ in want], (query, filter_, kwargs)
                np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


# ----------------------------------------------------------------- standbys
def test_the_standby_answers_as_the_primary_once_it_replayed_the_write(
    postgres_replicated, collection, tiny_config
) -> None:
    primary, standby = postgres_replicated
    writer = ColrankIndex.open(multi_host_url(primary, standby), collection, tiny_config)
    writer.backend.drop()
    try:
        fill(writer)
        writer.upsert(["Berlin has many museums and a famous wall."], ids=["geo-berlin"])
        lsn = writer.backend.replicas.last_commit_lsn
        assert lsn is not None
        on_primary = ColrankIndex.open(primary.url, collection, tiny_config)
        on_standby = ColrankIndex.open(standby.url, collection, tiny_config)
        on_standby.backend.replicas.observe(lsn)  # e.g. handed over from the writer
        with on_standby.backend.read() as view:
            assert view.on_standby and view.count() == len(CORPUS)
        assert_same_answers(on_primary, on_standby)
        on_primary.close()
        on_standby.close()
    finally:
        writer.backend.drop()
        writer.close()


def test_a_process_reads_its_own_writes_on_the_standby(
    postgres_replicated, collection, tiny_config
) -> None:
    index = ColrankIndex.open(multi_host_url(*postgres_replicated), collection, tiny_config)
    index.backend.drop()
    try:
        fill(index)
        for round_ in range(5):  # each write is seen by the very next search
            doc_id = f"new-{round_}"
            index.add([f"Zanzibar spice number {round_} is cloves."], ids=[doc_id])
            assert doc_id in [h.id for h in index.search("Zanzibar spice cloves", k=20)]
            with index.backend.read() as view:
                assert view.on_standby  # read where reads go, after the standby replayed
        index.delete(["new-0"])
        assert "new-0" not in [h.id for h in index.search("Zanzibar spice cloves", k=20)]
    finally:
        index.backend.drop()
        index.close()


def test_with_the_primary_down_searches_answer_and_writes_fail_fast_then_recover(
    collection, tiny_config
) -> None:
    servers = start_postgres(standbys=1)  # its own pair: this test stops the primary
    primary, standby = servers
    index = ColrankIndex.open(multi_host_url(primary, standby), collection, tiny_config)
    try:
        fill(index)
        before = top(index, "capital of germany")
        primary.halt()
        assert top(index, "capital of germany") == before  # the standby answers
        for _ in range(3):  # a broken connection, then no primary to connect to
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError):
                index.add(["Lisbon is the capital of Portugal."], ids=["geo-lisbon"])
            assert time.monotonic() - started < 2.0
        assert top(index, "capital of germany") == before
        primary.resume()
        started = time.monotonic()
        index.add(["Lisbon is the capital of Portugal."], ids=["geo-lisbon"])
        assert time.monotonic() - started < 2.0
        assert "geo-lisbon" in [h.id for h in index.search("capital of Portugal", k=20)]
    finally:
        index.close()
        stop_postgres(servers)


# ----------------------------------------------------------- spread over servers
@pytest.fixture
def spread_and_single(postgres_spread, postgres_url, collection, tiny_config):
    """The same collection spread over three shards, and on one server (exact search)."""
    coordinator, shards = postgres_spread
    spread = ColrankIndex.open(
        coordinator.url, collection, tiny_config, shards=[s.url for s in shards]
    )
    single = ColrankIndex.open(postgres_url, collection, tiny_config, exact=True)
    for index in (spread, single):
        index.backend.drop()
    yield spread, single
    for index in (spread, single):
        index.backend.drop()
        index.close()


def test_a_spread_collection_answers_as_one_server(spread_and_single, postgres_spread) -> None:
    spread, single = spread_and_single
    for index in (spread, single):
        fill(index)
    with spread.backend.read() as view:  # the documents really are on three servers
        per_shard = [
            view._rows(f"SELECT count(*) FROM {spread.backend.tables.docs_on(i)}")[0][0]
            for i in range(3)
        ]
    assert sum(per_shard) == len(CORPUS) and all(n > 0 for n in per_shard)
    assert_same_answers(single, spread)
    for index in (spread, single):  # adds, upserts and deletes
        index.add(["Madrid is the capital of Spain.", "Yeast also leavens pizza."], ids=["m", "y"])
        index.upsert(["Rome is the capital of Italy and of its Lazio region."], ids=["geo-rome"])
        index.delete(["geo-paris", "food-pasta"])
    assert spread.ids() == single.ids() and len(spread) == len(CORPUS)
    assert_same_answers(single, spread)
    assert spread.get(["geo-rome"])[0].text == single.get(["geo-rome"])[0].text


def test_a_stopped_shard_gives_a_typed_error_naming_it_then_recovers(
    spread_and_single, postgres_spread
) -> None:
    spread, _ = spread_and_single
    fill(spread)
    before = top(spread, "capital of germany")
    _, shards = postgres_spread
    shards[1].halt()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=f"port {shards[1].port}"):
            spread.search("capital of germany", k=5)
        assert time.monotonic() - started < 2.0
        with pytest.raises(StoreUnavailableError, match=r"colrank_.*_s1"):
            spread.add(["Oslo is the capital of Norway."], ids=["geo-oslo"])
    finally:
        shards[1].resume()
    assert top(spread, "capital of germany") == before
    assert "geo-oslo" not in spread  # the failed write left nothing behind


def test_a_spread_collection_refuses_exact_search(spread_and_single, postgres_spread) -> None:
    spread, _ = spread_and_single
    fill(spread)
    coordinator, _ = postgres_spread
    with pytest.raises(ValueError, match="ef_search"):
        PostgresBackend(coordinator.url, spread.backend.collection, exact=True)


# --------------------------------------------------------------------- BM25
@pytest.fixture
def filled(postgres_url, collection, tiny_config):
    """The corpus in a fresh collection on one server (dropped after)."""
    index = ColrankIndex.open(postgres_url, collection, tiny_config)
    index.backend.drop()
    fill(index)
    yield index
    PostgresBackend(postgres_url, collection).drop()
    index.close()


def test_bm25_depth_bounds_the_candidates_and_keeps_exact_scores(
    filled, postgres_url, collection
) -> None:
    shallow = PostgresBackend(postgres_url, collection, bm25_depth=1)
    query = "the capital city of the cells"
    with filled.backend.read() as deep_view, shallow.read() as shallow_view:
        deep = deep_view.lexical_search(query, 3, None)
        cut = shallow_view.lexical_search(query, 3, None)
        every = deep_view.lexical_search(query, 100, None)
        also = np.array(every.iids[::-1])
        scored_also = shallow_view.lexical_search(query, 3, None, also=also).also
    exact = dict(zip(every.iids.tolist(), every.scores.tolist(), strict=True))
    assert len(every.iids) > 3  # several documents hold a query term
    assert deep.iids.tolist() == every.iids[:3].tolist()  # depth >= n: exhaustive here
    assert np.all(np.diff(cut.scores) <= 0)
    for iid, score in zip(cut.iids.tolist(), cut.scores.tolist(), strict=True):
        assert score == pytest.approx(exact[iid], rel=1e-6)  # exact, whatever the depth
    np.testing.assert_allclose(scored_also, [exact[i] for i in also.tolist()], rtol=1e-6)
    shallow.close()


def test_a_collection_of_the_first_format_is_upgraded_on_open(
    filled, postgres_url, collection, tiny_config
) -> None:
    index = filled
    before = top(index, "bread dough yeast sugars", first_stage="bm25")
    t = index.backend.tables
    with index.backend.replicas.writes.connection() as conn, conn.transaction():
        conn.execute(f"DROP TABLE {t.df}")
        conn.execute(f"ALTER TABLE {t.terms} DROP COLUMN impact")
        conn.execute(
            "UPDATE colrank_collections SET manifest = manifest - 'shards' "
            "- 'bm25_reference_length' || '{\"format_version\": 1}' WHERE name = %s",
            [collection],
        )
    index.close()
    again = ColrankIndex.open(postgres_url, collection, tiny_config)
    assert again.backend.manifest()["format_version"] == 2
    after = top(again, "bread dough yeast sugars", first_stage="bm25")
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before])
    again.add(["Sourdough bread uses wild yeast."], ids=["sourdough"])
    assert "sourdough" in [h.id for h in again.search("sourdough yeast", first_stage="bm25")]
    again.close()


# ------------------------------------------------------------ concurrent writers
WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from colrank.store.base import DocumentRows, WriteBatch
    from colrank.store.postgres.backend import PostgresBackend
    url, name, rounds, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    backend = PostgresBackend(url, name)
    rng = np.random.default_rng(seed)
    ids = [f"d{i}" for i in range(10)]
    done = 0
    for r in range(rounds):
        v = rng.normal(size=(10, 8)).astype(np.float32)
        rows = DocumentRows(ids, [f"writer {seed} round {r}"] * 10, [{"w": seed}] * 10,
                            v / np.linalg.norm(v, axis=1, keepdims=True),
                            [np.ones((3, 4), np.float32)] * 10)
        backend.write(WriteBatch(upserts=rows, on_conflict="replace"))
        done += 1
    print(done)
    """
)


def test_processes_upserting_the_same_ids_all_complete(postgres_url, collection) -> None:
    """Two processes upsert the same 10 ids, 150 rounds each: every upsert completes."""
    PostgresBackend(postgres_url, collection).drop()
    rounds = 150
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, collection, str(rounds), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    outputs = [w.communicate(timeout=240) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err[-2000:]
        assert int(out.strip()) == rounds  # every round of this writer completed
    backend = PostgresBackend(postgres_url, collection)
    try:
        with backend.read() as view:
            assert sorted(view.ids()) == sorted(f"d{i}" for i in range(10))
            assert view.count() == 10
    finally:
        backend.drop()
        backend.close()


# ------------------------------------------------------------------- outages
def test_a_server_stopped_under_searching_threads_gives_typed_errors_then_recovers(
    collection, tiny_config
) -> None:
    """3 threads search while the server stops and starts again: every failure is typed,
    each call is bounded in time, and searches succeed again once it is back."""
    import threading

    servers = start_postgres()
    server = servers[0]
    index = ColrankIndex.open(server.url, collection, tiny_config)
    fill(index)
    outcomes: dict[str, int] = {"ok": 0, "unavailable": 0, "other": 0}
    slowest = [0.0]
    lock = threading.Lock()
    phase = {"down": False}

    def search(n: int) -> None:
        for i in range(n):
            started = time.monotonic()
            try:
                index.search(QUERIES[i % len(QUERIES)], k=3)
                kind = "ok"
            except StoreUnavailableError:
                kind = "unavailable"
            except Exception:  # counted: the test fails on any
                kind = "other"
            with lock:
                outcomes[kind] += 1
                slowest[0] = max(slowest[0], time.monotonic() - started)
            if phase["down"] and kind == "unavailable":
                return  # seen the outage: this thread is done

    try:
        threads = [threading.Thread(target=search, args=(400,)) for _ in range(3)]
        for thread in threads:
            thread.start()
        while outcomes["ok"] < 6:  # wait until every thread is searching
            time.sleep(0.01)
        phase["down"] = True
        server.halt()
        for thread in threads:
            thread.join(timeout=120)
        assert outcomes["other"] == 0 and outcomes["unavailable"] >= 1, outcomes
        assert slowest[0] < 3.0  # no call blocks for long while the server is down
        server.resume()
        started = time.monotonic()
        assert top(index, "capital of germany")  # the first call after the restart succeeds
        assert time.monotonic() - started < 1.5
    finally:
        index.close()
        stop_postgres(servers)


def test_the_cli_reports_an_unreachable_server_in_one_line(tmp_path) -> None:
    from colrank.store.postgres.embedded import _free_port

    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/x"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from colrank.cli import main; sys.exit(main())",
            "search",
            url,
            "q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot connect" in lines[0], done.stderr


# ---------------------------------------------------------------- bulk load
def index_definitions(backend: PostgresBackend, url: str) -> list[str]:
    """The documents' and postings' indexes and constraints on the server at ``url``."""
    import psycopg

    t = backend.tables
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = ANY("
            "ARRAY[to_regclass(%s), to_regclass(%s)]) UNION ALL SELECT pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = ANY(ARRAY[to_regclass(%s), to_regclass(%s)]) "
            "AND contype IN ('p', 'u', 'f')",
            [t.docs, t.terms, t.docs, t.terms],
        ).fetchall()
    return sorted(r[0] for r in rows)


def test_a_bulk_load_builds_the_indexes_once_and_answers_the_same(
    spread_and_single, postgres_spread, postgres_url
) -> None:
    spread, single = spread_and_single
    _, shards = postgres_spread
    fill(single)  # written document by document, indexes kept up to date
    reference = index_definitions(single.backend, postgres_url)
    assert any("hnsw" in d for d in reference) and any("FOREIGN KEY" in d for d in reference)
    with spread.backend.bulk_load(maintenance_work_mem="64MB"):
        fill(spread)
        assert spread.stats()["indexes_deferred"]
        for shard in shards:  # only the keys upserts need are left while loading
            assert len(index_definitions(spread.backend, shard.url)) == 4
        assert [h.id for h in spread.search("capital of germany", k=3)]  # still answers
    assert not spread.stats()["indexes_deferred"]
    for shard in shards:
        assert index_definitions(spread.backend, shard.url) == reference
    assert_same_answers(single, spread)
    spread.upsert(["Rome is the capital of Italy and of its Lazio region."], ids=["geo-rome"])
    single.upsert(["Rome is the capital of Italy and of its Lazio region."], ids=["geo-rome"])
    assert_same_answers(single, spread)


def test_a_bulk_load_cut_short_is_finished_by_the_next_process(
    postgres_url, collection, tiny_config
) -> None:
    loader = ColrankIndex.open(postgres_url, collection, tiny_config)
    loader.backend.drop()
    fill(loader)
    reference = index_definitions(loader.backend, postgres_url)
    loading = loader.backend.bulk_load()
    loading.__enter__()  # the process "dies" inside the block: nothing rebuilds the indexes
    loader.upsert(["Madrid is the capital of Spain."], ids=["m"])
    assert len(index_definitions(loader.backend, postgres_url)) < len(reference)
    other = PostgresBackend(postgres_url, collection)
    assert other.stats()["indexes_deferred"]
    assert other.finish_bulk_load() is True
    assert other.finish_bulk_load() is False  # nothing left to do
    assert index_definitions(other, postgres_url) == reference
    with pytest.raises(RuntimeError, match="fails inside"), other.bulk_load():
        raise RuntimeError("a load that fails inside the block")
    assert index_definitions(other, postgres_url) == reference  # rebuilt on the way out
    assert [h.id for h in loader.search("capital of spain", k=1)] == ["m"]
    loading.__exit__(None, None, None)  # the block's end finds nothing left to rebuild
    other.drop()
    other.close()
    loader.close()
