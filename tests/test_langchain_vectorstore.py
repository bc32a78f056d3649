"""LangChain VectorStore face: LangChain's standard suite (sync + async) and colrank's own checks."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from colrank import ColrankIndex
from colrank.integrations.langchain_store import ColrankVectorStore

from .conftest import CORPUS


class TestColrankVectorStore(VectorStoreIntegrationTests):
    """The standard suite over colrank's own encoders (the tiny test model)."""

    @pytest.fixture
    def vectorstore(self, tiny_config):
        return ColrankVectorStore(config=tiny_config)


class TestColrankVectorStoreWithLangChainEmbeddings(VectorStoreIntegrationTests):
    """The standard suite with the suite's own embedding model as colrank's dense encoder."""

    @pytest.fixture
    def vectorstore(self, tiny_config):
        return ColrankVectorStore(config=tiny_config, embedding=self.get_embeddings())


@pytest.fixture
def store(tiny_config) -> ColrankVectorStore:
    ids, texts, metas = zip(*CORPUS, strict=True)
    return ColrankVectorStore.from_texts(
        list(texts), metadatas=[dict(m) for m in metas], ids=list(ids), config=tiny_config
    )


def test_search_is_the_two_stage_search_and_metadata_stays_clean(store) -> None:
    docs = store.similarity_search("capital of germany", k=3)
    hits = store.index.search("capital of germany", k=3)
    assert [d.id for d in docs] == [h.id for h in hits]
    assert all(d.metadata == dict(CORPUS_BY_ID[d.id]) for d in docs)  # no score keys added
    scored = store.similarity_search_with_relevance_scores("capital of germany", k=3)
    assert [round(s, 6) for _, s in scored] == [round(min(1, max(0, h.score)), 6) for h in hits]


def test_filters_upserts_and_retriever_options(store) -> None:
    geo = store.similarity_search("anything", k=5, filter={"topic": "geo"})
    assert {d.metadata["topic"] for d in geo} == {"geo"} and len(geo) == 3
    store.add_documents(
        [
            Document(
                page_content="Paris hosts the Louvre.",
                id="geo-paris",
                metadata={"topic": "geo", "year": 2024},
            )
        ]
    )
    assert store.get_by_ids(["geo-paris"])[0].page_content == "Paris hosts the Louvre."
    assert len(store.index) == len(CORPUS)  # replaced, not duplicated
    retriever = store.as_retriever(search_kwargs={"k": 2})
    assert len(retriever.invoke("bread")) == 2
    strict = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.99, "k": 5}
    )
    assert strict.invoke("bread") == []  # nothing is that relevant to a random tiny model
    varied = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 8})
    assert len({d.id for d in varied.invoke("capital city")}) == 3


def test_mmr_prefers_variety_over_a_near_duplicate(tiny_config) -> None:
    texts = [
        "Berlin is the capital of Germany.",
        "Berlin is the capital city of Germany.",
        "Rome is the capital of Italy.",
    ]
    store = ColrankVectorStore.from_texts(texts, ids=["a", "b", "c"], config=tiny_config)
    top = [d.id for d in store.similarity_search("capital of Germany", k=2)]
    varied = [
        d.id
        for d in store.max_marginal_relevance_search(
            "capital of Germany", k=2, fetch_k=3, lambda_mult=0.1
        )
    ]
    assert set(top) == {"a", "b"}  # the two near-duplicates are the most relevant
    assert varied[0] == top[0] and varied[1] == "c"  # MMR trades the twin for variety


def test_an_empty_index_given_is_the_one_used(tiny_config) -> None:
    from colrank.integrations.llama_index_store import ColrankVectorStore as LlamaStore

    empty = ColrankIndex(tiny_config)  # len 0 is falsy: it must still be used (offline models)
    assert ColrankVectorStore(empty).add_texts(["Bread needs yeast."], ids=["b"]) == ["b"]
    assert LlamaStore(empty).client is empty and "b" in empty


def test_wrong_use_is_refused(store, tiny_index: ColrankIndex) -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.similarity_search("q", k=2, fliter={"topic": "geo"})
    with pytest.raises(ValueError, match="not both"):
        ColrankVectorStore(tiny_index, config=tiny_index.config)
    with pytest.raises(NotImplementedError, match="query text"):
        store.similarity_search_by_vector([0.0] * 32)
    with pytest.raises(ValueError, match="needs the ids"):
        store.delete()


def test_one_saved_index_serves_the_store_and_the_retriever(store, tmp_path, tiny_config) -> None:
    store.save(tmp_path / "idx")
    again = ColrankVectorStore.load(tmp_path / "idx", tiny_config)
    assert [d.id for d in again.similarity_search("yeast", k=2)] == [
        d.id for d in store.similarity_search("yeast", k=2)
    ]


CORPUS_BY_ID = {i: m for i, _, m in CORPUS}


def test_langchain_store_refuses_a_bare_string_where_ids_or_texts_are_meant(tiny_config) -> None:
    from colrank import InvalidInputError

    store = ColrankVectorStore(config=tiny_config)
    store.add_texts(["a doc", "b doc", "ab doc"], ids=["a", "b", "ab"])
    with pytest.raises(InvalidInputError, match="bare string"):
        store.delete("ab")
    with pytest.raises(InvalidInputError, match="bare string"):
        store.get_by_ids("ab")
    with pytest.raises(InvalidInputError, match="bare string"):
        store.add_texts("xyz")
    with pytest.raises(InvalidInputError, match="bare string"):
        store.add_texts(["x doc"], ids="x")
    assert sorted(store.index.ids()) == ["a", "ab", "b"]  # nothing deleted, nothing added
    # what the base class declares still works: any iterable of texts, sequences of ids
    assert store.add_texts(iter(["c doc"]), ids=("c",)) == ["c"]
    assert [d.id for d in store.get_by_ids(("ab", "c"))] == ["ab", "c"]
    assert store.delete(("ab",)) is True and sorted(store.index.ids()) == ["a", "b", "c"]
