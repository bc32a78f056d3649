"""LlamaIndex face: retriever and postprocessor contracts, query engine, shared index."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Document as LIDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from colrank import ColrankIndex, InvalidFilterError
from colrank.integrations import langchain as lc
from colrank.integrations.llama_index import ColrankRerank, ColrankRetriever, to_colrank_filter

from .conftest import CORPUS


def nodes_with_scores() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=i, text=t, metadata=dict(m)), score=0.5 - n / 100)
        for n, (i, t, m) in enumerate(CORPUS)
    ]


def test_retriever_returns_scored_nodes_with_ids(tiny_index: ColrankIndex) -> None:
    retriever = ColrankRetriever(tiny_index, similarity_top_k=3)
    results = retriever.retrieve("capital of germany")
    assert len(results) == 3
    by_id = {d[0]: d for d in CORPUS}
    for rank, r in enumerate(results, start=1):
        assert r.node.node_id in by_id and r.node.get_content() == by_id[r.node.node_id][1]
        assert r.node.metadata["rank"] == rank and isinstance(r.node.metadata["dense_score"], float)
        assert r.node.metadata["topic"] == by_id[r.node.node_id][2]["topic"]
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_from_nodes_encodes_with_metadata_but_returns_clean_text(tiny_config) -> None:
    nodes = [TextNode(id_=i, text=t, metadata=dict(m)) for i, t, m in CORPUS]
    retriever = ColrankRetriever.from_nodes(nodes, tiny_config, similarity_top_k=2)
    got = retriever.retrieve("bread")
    assert all(
        r.node.get_content(metadata_mode=MetadataMode.NONE) in {t for _, t, _ in CORPUS}
        for r in got
    )
    plain = ColrankRetriever.from_nodes(nodes, tiny_config, metadata_mode=MetadataMode.NONE)
    docs = [LIDocument(text=t, id_=i) for i, t, _ in CORPUS]
    from_docs = ColrankRetriever.from_documents(docs, tiny_config)
    assert [r.node.node_id for r in plain.retrieve("bread")] == [
        r.node.node_id for r in from_docs.retrieve("bread")
    ]


def test_metadata_filters_translate_and_apply(tiny_index: ColrankIndex) -> None:
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value="bio"),
            MetadataFilter(key="year", value=2020, operator=FilterOperator.GTE),
        ]
    )
    assert to_colrank_filter(filters) == {
        "$and": [{"topic": {"$eq": "bio"}}, {"year": {"$gte": 2020}}]
    }
    retriever = ColrankRetriever(tiny_index, similarity_top_k=5, filters=filters)
    assert {r.node.node_id for r in retriever.retrieve("anything")} == {"bio-dna", "bio-enzyme"}
    either = MetadataFilters(
        filters=[MetadataFilter(key="topic", value="food"), MetadataFilter(key="year", value=2009)],
        condition=FilterCondition.OR,
    )
    ids = {
        r.node.node_id
        for r in ColrankRetriever(tiny_index, similarity_top_k=9, filters=either).retrieve("x")
    }
    assert ids == {"food-pasta", "food-bread", "ir-bm25"}
    with pytest.raises(InvalidFilterError):
        to_colrank_filter(
            MetadataFilters(
                filters=[MetadataFilter(key="t", value="x", operator=FilterOperator.TEXT_MATCH)]
            )
        )


def test_async_retrieve_matches_sync(tiny_index: ColrankIndex) -> None:
    retriever = ColrankRetriever(tiny_index, similarity_top_k=4)
    sync = [r.node.node_id for r in retriever.retrieve("energy")]
    assert [r.node.node_id for r in asyncio.run(retriever.aretrieve("energy"))] == sync


class Recorder(BaseEventHandler):
    events: list = []  # noqa: RUF012 - a pydantic field, set per instance

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event, **kwargs) -> None:
        self.events.append(event.class_name())


def test_postprocessor_contract_and_events(tiny_index: ColrankIndex) -> None:
    recorder = Recorder(events=[])
    get_dispatcher().add_event_handler(recorder)
    try:
        nodes = nodes_with_scores()
        before = [(n.node.node_id, dict(n.node.metadata), n.score) for n in nodes]
        rerank = ColrankRerank(index=tiny_index, top_n=3, keep_retrieval_score=True)
        out = rerank.postprocess_nodes(nodes, query_str="capital city")
    finally:
        get_dispatcher().event_handlers.remove(recorder)
    assert len(out) == 3 and all(isinstance(n, NodeWithScore) for n in out)
    assert [(n.node.node_id, n.node.metadata, n.score) for n in nodes] == before  # untouched
    assert all(o is not n for o in out for n in nodes)
    original = {n.node.node_id: n.score for n in nodes}
    assert all(o.node.metadata["retrieval_score"] == original[o.node.node_id] for o in out)
    assert [o.score for o in out] == sorted((o.score for o in out), reverse=True)
    assert "ReRankStartEvent" in recorder.events and "ReRankEndEvent" in recorder.events
    assert len(rerank.postprocess_nodes(nodes[:2], query_str="q")) == 2
    assert rerank.postprocess_nodes([], query_str="q") == []
    with pytest.raises(ValueError, match="query_bundle"):
        rerank.postprocess_nodes(nodes)


def test_postprocessor_accepts_colbert_rerank_arguments(tiny_model_dir, monkeypatch) -> None:
    monkeypatch.setenv("COLRANK_DENSE_MODEL", tiny_model_dir)
    rerank = ColrankRerank(top_n=2, model=tiny_model_dir, device="cpu", keep_retrieval_score=False)
    assert rerank.class_name() == "ColrankRerank"
    out = rerank.postprocess_nodes(nodes_with_scores(), query_bundle=QueryBundle("bread"))
    assert len(out) == 2 and "retrieval_score" not in out[0].node.metadata
    with pytest.raises(ValueError, match="extra"):
        ColrankRerank(top_n=2, tokenizer="x", foo=1)  # not silently accepted
    with pytest.raises(ValueError, match="not both"):
        ColrankRerank(index=ColrankIndex(), model=tiny_model_dir)


def test_postprocessor_behind_a_vector_store_retriever(tiny_index: ColrankIndex) -> None:
    nodes = [TextNode(id_=i, text=t, metadata=dict(m)) for i, t, m in CORPUS]
    vector_index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    engine = vector_index.as_query_engine(
        llm=MockLLM(),
        similarity_top_k=8,
        node_postprocessors=[ColrankRerank(index=tiny_index, top_n=3)],
    )
    response = engine.query("capital of germany")
    assert len(response.source_nodes) == 3
    scores = [n.score for n in response.source_nodes]
    assert scores == sorted(scores, reverse=True)


def test_query_engine_with_mock_llm(tiny_index: ColrankIndex) -> None:
    retriever = ColrankRetriever(tiny_index, similarity_top_k=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("energy in cells")
    assert [n.node.node_id for n in response.source_nodes] == [
        r.node.node_id for r in retriever.retrieve("energy in cells")
    ]
    assert isinstance(str(response), str)


def test_same_saved_index_serves_both_frameworks(tiny_index: ColrankIndex, tmp_path) -> None:
    tiny_index.save(tmp_path / "idx")
    llama = ColrankRetriever.load(tmp_path / "idx", tiny_index.config, similarity_top_k=5)
    chain = lc.ColrankRetriever.load(tmp_path / "idx", tiny_index.config, k=5)
    for query in ["capital of germany", "bread", "late interaction"]:
        ours = [(r.node.node_id, round(r.score, 5)) for r in llama.retrieve(query)]
        theirs = [(d.id, round(d.metadata["relevance_score"], 5)) for d in chain.invoke(query)]
        assert ours == theirs


def test_chunks_keep_their_source_and_scores_stay_out_of_the_prompt(tiny_config) -> None:
    from llama_index.core.node_parser import SentenceSplitter

    docs = [
        LIDocument(
            text=t,
            id_=f"doc-{i}",
            metadata={"topic": m["topic"], "internal": "x"},
            excluded_llm_metadata_keys=["internal"],
        )
        for i, t, m in CORPUS
    ]
    chunks = SentenceSplitter(chunk_size=16, chunk_overlap=0).get_nodes_from_documents(docs)
    assert len(chunks) > len(docs)  # documents were really split
    retriever = ColrankRetriever.from_nodes(chunks, tiny_config, similarity_top_k=4)
    original = {c.node_id: c for c in chunks}
    for result in retriever.retrieve("bread and yeast"):
        node, chunk = result.node, original[result.node.node_id]
        assert node.ref_doc_id == chunk.ref_doc_id and node.ref_doc_id.startswith("doc-")
        # every relationship (source, previous, next) and the user's exclusions come back
        assert {r: i.node_id for r, i in node.relationships.items()} == {
            r: i.node_id for r, i in chunk.relationships.items()
        }
        assert set(chunk.excluded_llm_metadata_keys) <= set(node.excluded_llm_metadata_keys)
        prompt = node.get_content(metadata_mode=MetadataMode.LLM)
        assert "topic" in prompt and "internal" not in prompt  # the user's choices hold
        for key in ("colbert_score", "dense_score", "rank"):
            assert key in node.metadata and f"{key}:" not in prompt
