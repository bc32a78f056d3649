"""One relevance score: comparable across queries, the same in every face.

The default score (``rerank_fusion="calibrated"``) has a fixed scale, so a question the
corpus cannot answer gets a low top score instead of the 1.0 every top hit used to get
under per-query min-max scaling; and the LangChain and LlamaIndex retrievers and
rerankers put the same quantity under their score key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from colrank import ColrankIndex
from colrank.eval.corpus import read_corpus
from colrank.integrations import langchain as lc
from colrank.integrations import llama_index as li

EXAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "examples" / "data" / "corpus.jsonl"
ANSWERABLE = [
    "Why does bread dough rise?",
    "How does a vaccine protect you later?",
    "Which reranker reads the question and passage together?",
    "What made books cheaper in the fifteenth century?",
    "How do bacteria become resistant to drugs?",
]
OFF_TOPIC = [
    "Who won the football world cup in 1998?",
    "What is the best smartphone to buy this year?",
    "How do I renew my car insurance online?",
    "Which tennis player has the most grand slam titles?",
    "What time does the train to Glasgow leave?",
]


@pytest.fixture(scope="module")
def example_index(minilm_config) -> ColrankIndex:
    ids, texts, metas = read_corpus(EXAMPLE_CORPUS)
    index = ColrankIndex(minilm_config)
    index.add(texts, metas, ids)
    return index


@pytest.mark.slow
def test_off_topic_questions_score_clearly_below_answerable_ones(example_index) -> None:
    answerable = [example_index.search(q, k=1)[0].score for q in ANSWERABLE]
    off_topic = [example_index.search(q, k=1)[0].score for q in OFF_TOPIC]
    # every answerable top hit beats every off-topic one, by a clear margin
    assert min(answerable) - max(off_topic) > 0.05, (answerable, off_topic)
    assert max(answerable) < 1.0  # not min-max scaled: no top hit is 1.0 by construction


@pytest.mark.slow
def test_langchain_retriever_and_reranker_share_the_score(example_index) -> None:
    query = ANSWERABLE[0]
    docs = lc.ColrankRetriever(index=example_index, k=5).invoke(query)
    # the reranker, given the retriever's own documents, scores them identically
    reranked = lc.ColrankReranker(index=example_index, top_n=5).compress_documents(docs, query)
    want = {d.id: d.metadata["relevance_score"] for d in docs}
    got = {d.id: d.metadata["relevance_score"] for d in reranked}
    assert got.keys() == want.keys()
    for doc_id, score in got.items():
        assert score == pytest.approx(want[doc_id], abs=1e-6)
    # documents from elsewhere (no id, not in the index) get the same kind of score:
    # the indexed passage's text alone scores like the stored one (same model, fp16)
    outside = [LCDocument(page_content=d.page_content) for d in docs]
    fresh = lc.ColrankReranker(index=example_index, top_n=5).compress_documents(outside, query)
    by_text = {d.page_content: d.metadata["relevance_score"] for d in fresh}
    for d in docs:
        assert by_text[d.page_content] == pytest.approx(d.metadata["relevance_score"], abs=1e-2)


@pytest.mark.slow
def test_llama_index_retriever_and_postprocessor_share_the_score(example_index) -> None:
    query = ANSWERABLE[2]
    nodes = li.ColrankRetriever(example_index, similarity_top_k=5).retrieve(query)
    rerank = li.ColrankRerank(index=example_index, top_n=5)
    out = rerank.postprocess_nodes(nodes, query_bundle=QueryBundle(query))
    want = {n.node.node_id: n.score for n in nodes}
    assert {n.node.node_id: pytest.approx(want[n.node.node_id], abs=1e-6) for n in out} == {
        n.node.node_id: n.score for n in out
    }
    # and the same key as LangChain's for the same query and index
    lc_docs = lc.ColrankRetriever(index=example_index, k=5).invoke(query)
    assert [(d.id, round(d.metadata["relevance_score"], 6)) for d in lc_docs] == [
        (n.node.node_id, round(n.score, 6)) for n in nodes
    ]
    # nodes from another retriever (not in the index) are scored on the same scale
    foreign = [NodeWithScore(node=TextNode(text=n.node.text), score=0.0) for n in nodes]
    rescored = rerank.postprocess_nodes(foreign, query_bundle=QueryBundle(query))
    assert max(n.score for n in rescored) == pytest.approx(max(want.values()), abs=1e-2)
