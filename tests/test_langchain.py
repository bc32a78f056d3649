"""LangChain face: standard retriever suite, compressor contracts, LCEL chain."""

from __future__ import annotations

import asyncio
import functools

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from colrank import ColrankIndex
from colrank.integrations.langchain import ColrankReranker, ColrankRetriever

from .conftest import CORPUS


@functools.cache
def _shared_index(model_dir: str) -> ColrankIndex:
    from colrank import ColrankConfig

    cfg = ColrankConfig(
        models={"dense_model": model_dir, "colbert_model": model_dir},
        runtime={"device": "cpu", "show_progress": False},
    )
    index = ColrankIndex(cfg)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


class TestColrankRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own conformance suite for retrievers."""

    @pytest.fixture(autouse=True)
    def _model(self, tiny_model_dir: str) -> None:
        type(self)._model_dir = tiny_model_dir

    @property
    def retriever_constructor(self) -> type[ColrankRetriever]:
        return ColrankRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": _shared_index(self._model_dir)}

    @property
    def retriever_query_example(self) -> str:
        return "capital city"


@pytest.fixture
def retriever(tiny_index: ColrankIndex) -> ColrankRetriever:
    return ColrankRetriever(index=tiny_index, k=3, candidates=10)


def test_documents_carry_ids_scores_and_rank(retriever: ColrankRetriever) -> None:
    docs = retriever.invoke("capital of germany")
    assert len(docs) == 3
    by_id = {d[0]: d for d in CORPUS}
    for rank, doc in enumerate(docs, start=1):
        assert doc.page_content == by_id[doc.id][1]
        assert doc.metadata["rank"] == rank
        assert isinstance(doc.metadata["relevance_score"], float)
        assert isinstance(doc.metadata["colbert_score"], float)
        assert isinstance(doc.metadata["dense_score"], float)
        assert isinstance(doc.metadata["bm25_score"], float)  # default recall is hybrid
        assert doc.metadata["topic"] == by_id[doc.id][2]["topic"]
    scores = [d.metadata["relevance_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_per_call_overrides_and_filter(retriever: ColrankRetriever) -> None:
    docs = retriever.invoke("anything", k=2, filter={"topic": "food"})
    assert len(docs) == 2 and {d.metadata["topic"] for d in docs} == {"food"}
    assert len(retriever.invoke("anything", k=12)) == 12  # candidates raised to k
    filtered = ColrankRetriever(index=retriever.index, k=5, filter={"topic": "ir"})
    assert {d.metadata["topic"] for d in filtered.invoke("x")} == {"ir"}


def test_async_and_batch_match_sync(retriever: ColrankRetriever) -> None:
    queries = ["capital of germany", "energy in cells", "bread"]
    sync = [[d.id for d in retriever.invoke(q)] for q in queries]

    async def run_all():
        return await asyncio.gather(*(retriever.ainvoke(q) for q in queries))

    assert [[d.id for d in r] for r in asyncio.run(run_all())] == sync
    assert [[d.id for d in r] for r in retriever.batch(queries)] == sync


def test_callbacks_see_the_run(retriever: ColrankRetriever) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    seen: list[str] = []

    class Recorder(BaseCallbackHandler):
        def on_retriever_start(self, serialized, query, **kwargs):
            seen.append(f"start:{query}")

        def on_retriever_end(self, documents, **kwargs):
            seen.append(f"end:{len(documents)}")

    retriever.invoke("bread", config={"callbacks": [Recorder()]})
    assert seen == ["start:bread", "end:3"]


def test_from_documents_keeps_ids_and_shares_index_with_save(tiny_config, tmp_path) -> None:
    docs = [Document(page_content=t, metadata=m, id=i) for i, t, m in CORPUS]
    built = ColrankRetriever.from_documents(docs, config=tiny_config, k=2)
    assert {d.id for d in built.invoke("pasta")} <= {i for i, _, _ in CORPUS}
    built.index.save(tmp_path / "idx")
    loaded = ColrankRetriever.load(tmp_path / "idx", tiny_config, k=2)
    assert [d.id for d in loaded.invoke("pasta")] == [d.id for d in built.invoke("pasta")]


class ListRetriever(BaseRetriever):
    """Stands for any other retriever (a vector store, BM25, an ensemble)."""

    docs: list[Document]

    def _get_relevant_documents(self, query, *, run_manager):
        return list(self.docs)


def test_reranker_contract(tiny_index: ColrankIndex) -> None:
    docs = [
        Document(page_content=t, metadata={**m, "relevance_score": 0.1}, id=i)
        for i, t, m in CORPUS[:5]
    ]
    snapshot = [(d.page_content, dict(d.metadata), d.id) for d in docs]
    reranker = ColrankReranker(index=tiny_index, top_n=3)
    out = reranker.compress_documents(docs, "capital")
    assert len(out) == 3
    assert [(d.page_content, d.metadata, d.id) for d in docs] == snapshot  # inputs untouched
    assert all(d.metadata["retrieval_score"] == 0.1 for d in out)
    assert [d.metadata["rank"] for d in out] == [1, 2, 3]
    assert {d.id for d in out} <= {d.id for d in docs}
    assert len(reranker.compress_documents(docs[:2], "capital")) == 2  # fewer than top_n
    assert reranker.compress_documents([], "capital") == []
    everything = ColrankReranker(index=tiny_index, top_n=None).compress_documents(docs, "q")
    assert sorted(d.id for d in everything) == sorted(d.id for d in docs)
    assert asyncio.run(reranker.acompress_documents(docs, "capital"))[0].id == out[0].id


def test_reranker_inside_contextual_compression_retriever(tiny_config) -> None:
    from langchain_classic.retrievers import ContextualCompressionRetriever

    base = ListRetriever(docs=[Document(page_content=t, id=i) for i, t, _ in CORPUS])
    reranker = ColrankReranker(config=tiny_config, top_n=4)
    pipeline = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    out = pipeline.invoke("late interaction")
    assert len(out) == 4
    direct = reranker.compress_documents(base.docs, "late interaction")
    assert [d.id for d in out] == [d.id for d in direct]


def test_lcel_rag_chain_end_to_end(retriever: ColrankRetriever) -> None:
    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    llm = FakeListChatModel(responses=["Berlin."])
    captured: dict[str, str] = {}

    def format_docs(docs: list[Document]) -> str:
        captured["context"] = "\n\n".join(d.page_content for d in docs)
        return captured["context"]

    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    assert chain.invoke("What is the capital of Germany?") == "Berlin."
    expected = retriever.invoke("What is the capital of Germany?")
    assert captured["context"] == "\n\n".join(d.page_content for d in expected)


def test_reranker_uses_the_index_it_is_given_even_when_empty(tiny_config) -> None:
    empty = ColrankIndex(tiny_config)  # len 0 -> falsy; must still be the engine used
    reranker = ColrankReranker(index=empty, top_n=2)
    docs = [Document(page_content="Berlin is in Germany."), Document(page_content="Bread.")]
    out = reranker.compress_documents(docs, "capital of germany")
    assert len(out) == 2 and all("relevance_score" in d.metadata for d in out)
    # scored with the index's (tiny, 32-dim) models: the same scores its own rerank gives
    direct = {
        h.text: h.score for h in empty.rerank("capital of germany", [d.page_content for d in docs])
    }
    assert {d.page_content: d.metadata["relevance_score"] for d in out} == direct


def test_given_ids_are_kept_when_only_some_documents_have_one(tiny_config) -> None:
    docs = [
        Document(page_content="Berlin is the capital of Germany.", id="berlin"),
        Document(page_content="Bread rises because yeast makes gas."),
    ]
    retriever = ColrankRetriever.from_documents(docs, config=tiny_config, k=2)
    ids = retriever.index.ids()
    assert ids[0] == "berlin" and ids[1] and ids[1] != "berlin"  # only the missing one is new
    added = retriever.add_documents([Document(page_content="Rome.", id="rome"), Document("x")])
    assert added[0] == "rome" and "rome" in retriever.index


def test_habitual_arguments_are_honoured_or_refused(tiny_index) -> None:
    two = ColrankRetriever(index=tiny_index, search_kwargs={"k": 2})
    assert len(two.invoke("capital city")) == 2
    assert len(two.invoke("capital city", k=3)) == 3  # a per-call k wins
    every = ColrankRetriever(index=tiny_index, k=12).invoke("capital city")
    cut = every[5].metadata["relevance_score"]
    kept = ColrankRetriever(
        index=tiny_index,
        k=12,
        search_type="similarity_score_threshold",
        search_kwargs={"score_threshold": cut},
    ).invoke("capital city")
    assert [d.id for d in kept] == [d.id for d in every if d.metadata["relevance_score"] >= cut]
    assert 1 <= len(kept) < 12
    geo = ColrankRetriever(index=tiny_index, search_kwargs={"filter": {"topic": "geo"}, "k": 5})
    assert {d.metadata["topic"] for d in geo.invoke("anything")} == {"geo"}
    with pytest.raises(ValueError, match="mmr"):
        ColrankRetriever(index=tiny_index, search_type="mmr")
    with pytest.raises(ValueError, match="score_threshold"):
        ColrankRetriever(index=tiny_index, search_type="similarity_score_threshold")
    with pytest.raises(ValueError, match="unknown search argument"):
        ColrankRetriever(index=tiny_index, search_kwargs={"kk": 2})
    with pytest.raises(ValueError, match="unknown search argument"):
        ColrankRetriever(index=tiny_index).invoke("q", top_k=2)
    with pytest.raises(ValueError, match="extra"):
        ColrankRetriever(index=tiny_index, kk=2)  # a typo is not silently dropped
    with pytest.raises(ValueError, match="extra"):
        ColrankReranker(top_n=2, devise="cpu")
    with pytest.raises(ValueError, match="not both"):
        _ = ColrankReranker(index=tiny_index, model="offline:minilm").ranker


def test_user_metadata_is_never_overwritten_by_score_keys(tiny_config) -> None:
    docs = [
        Document(page_content="Bread needs yeast.", id="b", metadata={"rank": "senior"}),
        Document(page_content="Paris is in France.", id="p", metadata={"relevance_score": 7}),
    ]
    retriever = ColrankRetriever.from_documents(docs, config=tiny_config, k=2)
    out = {d.id: d.metadata for d in retriever.invoke("bread")}
    assert out["b"]["user_rank"] == "senior" and isinstance(out["b"]["rank"], int)
    assert out["p"]["user_relevance_score"] == 7 and isinstance(out["p"]["relevance_score"], float)
