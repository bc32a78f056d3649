"""ColrankIndex, the CLI and both framework faces on a real PostgreSQL + pgvector server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from colrank import ColrankIndex, InvalidInputError
from colrank.integrations.langchain_store import ColrankVectorStore

from .conftest import CORPUS, assert_stores_agree

QUERIES = ["capital of germany", "energy in cells", "late interaction retrieval", "bread"]


@pytest.fixture
def collection(request) -> str:
    return f"t{zlib.crc32(request.node.nodeid.encode())}"


@pytest.fixture
def pg_index(postgres_url, collection, tiny_config):
    index = ColrankIndex.open(postgres_url, collection, tiny_config)
    index.backend.drop()
    yield index
    index.backend.drop()
    index.close()


def fill(index: ColrankIndex) -> None:
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))


def test_exact_search_matches_the_local_backend(postgres_url, collection, tiny_config) -> None:
    local = ColrankIndex(tiny_config)
    fill(local)
    server = ColrankIndex.open(  # the same token codec as the local default, for parity
        postgres_url,
        collection,
        tiny_config,
        exact=True,
        dense_type="vector",
        codec=tiny_config.token_store.codec,
    )
    server.backend.drop()
    try:
        fill(server)
        for query in QUERIES:
            for kwargs in ({}, {"first_stage": "dense"}, {"first_stage": "bm25"}):
                a = local.search(query, k=10, candidates=12, **kwargs)
                b = server.search(query, k=10, candidates=12, **kwargs)
                assert [h.id for h in a] == [h.id for h in b], (query, kwargs)
                np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-3)
                np.testing.assert_allclose(
                    [h.colbert_score for h in a], [h.colbert_score for h in b], rtol=1e-5
                )
        hits = server.search("anything", k=5, filter={"year": {"$gte": 2021}})
        assert {h.id for h in hits} == {"geo-berlin", "bio-dna", "bio-enzyme"}
        outside = ["Berlin is the capital of Germany and its largest city.", "Pasta water."]
        assert [h.score for h in local.rerank("capital", outside)] == pytest.approx(
            [h.score for h in server.rerank("capital", outside)], abs=1e-3
        )
    finally:
        server.backend.drop()
        server.close()


def test_writes_reads_and_reopening(pg_index, postgres_url, collection, tiny_config) -> None:
    fill(pg_index)
    pg_index.upsert(["Paris hosts the Louvre."], [{"topic": "geo", "year": 2024}], ["geo-paris"])
    pg_index.delete(["food-pasta"])
    assert pg_index.delete(["nope"], missing="ignore") == []
    assert len(pg_index) == len(CORPUS) - 1
    assert pg_index.get(["geo-paris"])[0].text == "Paris hosts the Louvre."
    assert_stores_agree(pg_index)
    with pytest.raises(InvalidInputError, match="database"):
        pg_index.save("somewhere")
    again = ColrankIndex.open(postgres_url, collection, trust_models=True)  # the stored config
    try:
        assert again.config.models == tiny_config.models
        assert [h.id for h in again.search("capital", k=3)] == [
            h.id for h in pg_index.search("capital", k=3)
        ]
        assert again.stats()["documents"] == len(CORPUS) - 1
    finally:
        again.close()


def test_hnsw_search_with_a_filter_still_fills_k(pg_index) -> None:
    fill(pg_index)
    hits = pg_index.search("capital city of a country", k=3, candidates=3, filter={"topic": "bio"})
    assert len(hits) == 3 and {h.metadata["topic"] for h in hits} == {"bio"}


class TestVectorStoreOnPostgres(VectorStoreIntegrationTests):
    """LangChain's standard suite with the collection in PostgreSQL."""

    @pytest.fixture
    def vectorstore(self, postgres_url, tiny_config, request):
        name = f"lc{zlib.crc32(request.node.nodeid.encode())}"
        index = ColrankIndex.open(postgres_url, name, tiny_config)
        index.backend.drop()
        yield ColrankVectorStore(index)
        index.backend.drop()
        index.close()


def test_llama_index_query_engine_on_postgres(pg_index) -> None:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.llms import MockLLM

    from colrank.integrations.llama_index_store import ColrankVectorStore as LlamaStore

    store = LlamaStore(pg_index)
    index = VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model)
    for doc_id, text, meta in CORPUS:
        index.insert(Document(text=text, id_=f"doc-{doc_id}", metadata=dict(meta)))
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    got = [n.node.ref_doc_id for n in engine.query("capital of germany").source_nodes]
    assert got[0] == "doc-geo-berlin"
    index.delete_ref_doc("doc-geo-berlin")
    assert "doc-geo-berlin" not in [
        n.node.ref_doc_id for n in engine.query("capital of germany").source_nodes
    ]


WRITER = textwrap.dedent(
    """
    import sys
    from colrank import ColrankConfig, ColrankIndex
    url, name, config = sys.argv[1], sys.argv[2], ColrankConfig.model_validate_json(sys.argv[3])
    index = ColrankIndex.open(url, name, config)
    version = 0
    while True:
        version += 1
        ids = [f"v-{i}" for i in range(4)]
        texts = [f"Document {i} in version {version} of the batch." for i in range(4)]
        metas = [{"version": version, "slot": i} for i in range(4)]
        index.upsert(texts, metas, ids)
        print("committed", version, flush=True)
    """
)


def test_a_second_process_writes_while_this_one_searches_and_is_killed(
    pg_index, postgres_url, collection, tiny_config
) -> None:
    fill(pg_index)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, postgres_url, collection, tiny_config.model_dump_json()],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    committed = 0
    try:
        while committed < 6:  # search between the other process's commits
            line = writer.stdout.readline()
            assert line.startswith("committed"), line
            committed = int(line.split()[1])
            for hit in pg_index.search("document version batch", k=8):
                if hit.id.startswith("v-"):
                    assert hit.text.startswith(f"Document {hit.metadata['slot']} in version")
            versions = {d.metadata["version"] for d in pg_index.get([f"v-{i}" for i in range(4)])}
            assert len(versions) == 1 and versions.pop() >= committed  # never half a batch
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-batch, most likely: it writes in a loop
        writer.wait(timeout=30)
    versions = {d.metadata["version"] for d in pg_index.get([f"v-{i}" for i in range(4)])}
    assert len(versions) == 1 and versions.pop() >= committed  # what was committed is there
    assert len(pg_index) == len(CORPUS) + 4
    assert_stores_agree(pg_index)


def test_cli_indexes_into_and_searches_a_database(
    postgres_url, collection, tiny_model_dir, tmp_path, capsys
) -> None:
    import json

    from colrank.cli import main

    from .test_cli import model_args

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"_id": i, "text": t, **m}) for i, t, m in CORPUS))
    flags = ["--store", postgres_url, "--collection", collection]
    assert main(["index", str(corpus), *flags, *model_args(tiny_model_dir)]) == 0
    assert f"indexed {len(CORPUS)} documents" in capsys.readouterr().out
    search = ["search", postgres_url, "yeast bread", "--collection", collection, "--json"]
    search.append("--trust-models")
    assert main([*search, "-k", "2", "--filter", '{"topic": "food"}']) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == "food-bread" and len(hits) == 2
    ColrankIndex.open(postgres_url, collection, trust_models=True).backend.drop()


def test_the_server_default_codec_is_int8_unless_one_is_chosen(
    postgres_url, collection, tiny_config
) -> None:
    store = tiny_config.token_store.model_copy(update={"codec": "float16"})
    for config, codec in (
        (tiny_config, "int8"),
        (tiny_config.model_copy(update={"token_store": store}), "float16"),
    ):
        index = ColrankIndex.open(postgres_url, collection, config)
        index.backend.drop()
        fill(index)
        assert index.stats()["codec"] == codec
        index.backend.drop()
        index.close()


def test_recoding_tokens_in_the_database(pg_index, postgres_url, collection) -> None:
    pg_index.backend.drop()
    fill(pg_index)
    more = [f"{text} In other words: {text.lower()}" for _, text, _ in CORPUS]
    pg_index.add(more, ids=[f"more-{i}" for i, *_ in CORPUS])  # pq needs 256 tokens to train
    pg_index.recode_tokens("float16")
    before = pg_index.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    bytes_before = pg_index.stats()["token_bytes"]
    pg_index.recode_tokens("int8")
    after = pg_index.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    assert (
        pg_index.stats()["codec"] == "int8" and pg_index.stats()["token_bytes"] < 0.6 * bytes_before
    )
    assert after.ids == before.ids
    np.testing.assert_allclose(after.colbert_scores, before.colbert_scores, rtol=1e-2)
    with pytest.raises(InvalidInputError, match="unknown token codec"):
        pg_index.recode_tokens("bfloat8")
    pg_index.recode_tokens("pq8")  # trained on the stored tokens, kept in the database
    assert pg_index.stats()["bytes_per_token"] == 8
    here = pg_index.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    again = ColrankIndex.open(postgres_url, collection, trust_models=True)  # as a new process would
    try:
        there = again.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    finally:
        again.close()
    np.testing.assert_allclose(there.colbert_scores, here.colbert_scores, rtol=1e-6)
    assert not np.allclose(here.colbert_scores, after.colbert_scores, rtol=1e-3)  # pq is lossy


def test_an_unreachable_database_fails_at_once_and_clearly(postgres_url) -> None:
    from colrank import StoreUnavailableError
    from colrank.store.postgres.embedded import _free_port

    url = f"postgresql://nobody:secret@127.0.0.1:{_free_port()}/rag"
    with pytest.raises(StoreUnavailableError, match="cannot connect") as caught:
        ColrankIndex.open(url, "docs", connect_timeout=1)
    assert "secret" not in str(caught.value)
