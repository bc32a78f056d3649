"""LlamaIndex vector store face: VectorStoreIndex, query engine, deletes, filters, persistence."""

from __future__ import annotations

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from colrank.integrations.llama_index_store import ColrankVectorStore

from .conftest import CORPUS

CORPUS_TEXT = {i: t for i, t, _ in CORPUS}

BREAD = Document(
    text="Bread dough rises because yeast ferments sugars into carbon dioxide. " * 6
    + "Kneading builds gluten, which traps the gas. " * 6,
    id_="doc-bread",
    metadata={"topic": "food", "year": 2016},
)
CAPITALS = Document(
    text="Berlin is the capital of Germany. " * 8 + "Paris is the capital of France. " * 8,
    id_="doc-capitals",
    metadata={"topic": "geo", "year": 2020},
)


@pytest.fixture
def store(tiny_config) -> ColrankVectorStore:
    return ColrankVectorStore(config=tiny_config)


def build(store: ColrankVectorStore) -> VectorStoreIndex:
    index = VectorStoreIndex.from_vector_store(
        store,
        embed_model=store.embed_model,
        transformations=[SentenceSplitter(chunk_size=32, chunk_overlap=4)],
    )
    for doc in (BREAD, CAPITALS):
        index.insert(doc)
    return index


def test_query_engine_inserts_deletes_by_source_and_answers(store) -> None:
    index = build(store)
    by_source = {
        d: store.client.ids(filter={"ref_doc_id": d}) for d in ("doc-bread", "doc-capitals")
    }
    assert len(by_source["doc-bread"]) >= 2 and len(by_source["doc-capitals"]) >= 2
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=3)
    response = engine.query("capital of germany")
    got = [n.node.node_id for n in response.source_nodes]
    direct = store.client.search("capital of germany", k=3)
    assert got == [h.id for h in direct]  # the store's own two-stage search, inside
    assert [n.score for n in response.source_nodes] == [h.score for h in direct]
    index.delete_ref_doc("doc-capitals")
    assert store.client.ids(filter={"ref_doc_id": "doc-capitals"}) == []
    assert len(store.client) == len(by_source["doc-bread"])
    after = engine.query("capital of germany")
    assert {n.node.ref_doc_id for n in after.source_nodes} == {"doc-bread"}


def test_nodes_keep_relationships_exclusions_and_metadata(store) -> None:
    node = TextNode(
        id_="n1",
        text="Mitochondria make ATP.",
        metadata={"topic": "bio", "secret": "x"},
        excluded_llm_metadata_keys=["secret"],
        excluded_embed_metadata_keys=["secret", "topic"],
    )
    node.relationships[NodeRelationship.SOURCE] = Document(
        text="cell", id_="src"
    ).as_related_node_info()
    store.add([node])
    (back,) = store.get_nodes(node_ids=["n1"])
    assert back.node_id == "n1" and back.get_content() == "Mitochondria make ATP."
    assert back.metadata == {"topic": "bio", "secret": "x"}
    assert back.excluded_llm_metadata_keys == ["secret"]
    assert back.excluded_embed_metadata_keys == ["secret", "topic"]
    assert back.ref_doc_id == "src"
    result = store.query(VectorStoreQuery(query_str="ATP energy", similarity_top_k=1))
    assert result.ids == ["n1"] and result.nodes[0].ref_doc_id == "src"


def test_filters_modes_and_restrictions(store) -> None:
    build(store)
    food = MetadataFilters(filters=[MetadataFilter(key="topic", value="food")])
    result = store.query(VectorStoreQuery(query_str="capital", similarity_top_k=10, filters=food))
    assert result.ids and {n.metadata["topic"] for n in result.nodes} == {"food"}
    recent = MetadataFilters(
        filters=[MetadataFilter(key="year", value=2018, operator=FilterOperator.GT)]
    )
    result = store.query(VectorStoreQuery(query_str="bread", similarity_top_k=10, filters=recent))
    assert {n.ref_doc_id for n in result.nodes} == {"doc-capitals"}
    only = store.client.ids(filter={"ref_doc_id": "doc-bread"})[:1]
    result = store.query(VectorStoreQuery(query_str="capital", similarity_top_k=5, node_ids=only))
    assert result.ids == only
    result = store.query(VectorStoreQuery(query_str="x", similarity_top_k=5, doc_ids=["doc-bread"]))
    assert {n.ref_doc_id for n in result.nodes} == {"doc-bread"}
    for mode in (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.MMR):
        result = store.query(
            VectorStoreQuery(query_str="yeast gluten", similarity_top_k=2, mode=mode)
        )
        assert len(result.ids) == 2
    with pytest.raises(ValueError, match="not supported"):
        store.query(VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.SVM))
    with pytest.raises(ValueError, match="query text"):
        store.query(VectorStoreQuery(query_embedding=[0.1] * 32))
    with pytest.raises(ValueError, match="not supported"):
        store.query(
            VectorStoreQuery(
                query_str="x",
                filters=MetadataFilters(
                    filters=[MetadataFilter(key="t", value="a", operator=FilterOperator.TEXT_MATCH)]
                ),
            )
        )
    store.delete_nodes(filters=food)
    assert store.client.ids(filter={"topic": "food"}) == []
    store.clear()
    assert len(store.client) == 0


def test_persist_and_load_with_the_storage_context(store, tmp_path, tiny_config) -> None:
    index = build(store)
    index.storage_context.persist(persist_dir=str(tmp_path))
    again = ColrankVectorStore.from_persist_path(
        str(tmp_path / "default__vector_store.json"), tiny_config
    )
    context = StorageContext.from_defaults(persist_dir=str(tmp_path), vector_store=again)
    loaded = load_index_from_storage(context, embed_model=again.embed_model)
    ask = "why does dough rise?"
    first = [n.node.node_id for n in index.as_retriever(similarity_top_k=3).retrieve(ask)]
    second = [n.node.node_id for n in loaded.as_retriever(similarity_top_k=3).retrieve(ask)]
    assert first == second and len(first) == 3


def test_llama_store_refuses_a_bare_string_where_node_ids_are_meant(tiny_index) -> None:
    from colrank import InvalidInputError

    store = ColrankVectorStore(tiny_index)
    before = sorted(tiny_index.ids())
    with pytest.raises(InvalidInputError, match="bare string"):
        store.delete_nodes("geo-paris")
    with pytest.raises(InvalidInputError, match="bare string"):
        store.get_nodes("geo-paris")
    assert sorted(tiny_index.ids()) == before
    assert [n.node_id for n in store.get_nodes(("geo-paris",))] == ["geo-paris"]


def test_llama_store_queries_an_index_written_by_the_core_or_langchain(tiny_index) -> None:
    from colrank.integrations.langchain_store import ColrankVectorStore as LangChainStore

    LangChainStore(tiny_index).add_texts(["Sourdough bread rises slowly."], [{"k": 1}], ids=["lc"])
    store = ColrankVectorStore(tiny_index)
    result = store.query(VectorStoreQuery(query_str="bread rises", similarity_top_k=20))
    assert result.ids == [h.id for h in tiny_index.search("bread rises", k=20)]
    by_id = {n.node_id: n for n in result.nodes}
    assert by_id["lc"].get_content() == "Sourdough bread rises slowly."
    assert by_id["lc"].metadata == {"k": 1}
    assert by_id["geo-paris"].metadata == {"topic": "geo", "year": 2019}
    got = {n.node_id: n.get_content() for n in store.get_nodes(["lc", "geo-paris"])}
    assert got == {"lc": "Sourdough bread rises slowly.", "geo-paris": CORPUS_TEXT["geo-paris"]}


@pytest.mark.parametrize("top_k", [0, -5])
def test_llama_store_refuses_a_non_positive_top_k(tiny_index, top_k) -> None:
    from colrank import InvalidInputError

    store = ColrankVectorStore(tiny_index)
    with pytest.raises(InvalidInputError, match="similarity_top_k"):
        store.query(VectorStoreQuery(query_str="bread", similarity_top_k=top_k))


def test_llama_store_filters_nested_too_deep_get_the_typed_filter_error(tiny_index) -> None:
    from colrank import InvalidFilterError

    spec = MetadataFilters(filters=[MetadataFilter(key="topic", value="geo")])
    for _ in range(1000):
        spec = MetadataFilters(filters=[spec])
    store = ColrankVectorStore(tiny_index)
    with pytest.raises(InvalidFilterError, match="deeper than"):
        store.query(VectorStoreQuery(query_str="bread", similarity_top_k=2, filters=spec))
    with pytest.raises(InvalidFilterError, match="deeper than"):
        store.get_nodes(filters=spec)
