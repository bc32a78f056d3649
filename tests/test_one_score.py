"""One score, one path: search and rerank give an indexed document the same score."""

from __future__ import annotations

import random
from typing import get_args

import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from colrank import ColrankIndex, Document
from colrank.config import SearchConfig
from colrank.integrations.langchain import ColrankReranker
from colrank.integrations.llama_index import ColrankRerank

from .conftest import CORPUS

FUSIONS = get_args(SearchConfig.model_fields["rerank_fusion"].annotation)
STAGES = get_args(SearchConfig.model_fields["first_stage"].annotation)
QUERIES = ["capital city of germany", "energy in cells", "dense vectors similarity search"]


@pytest.mark.parametrize("first_stage", STAGES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_rerank_of_indexed_documents_gives_the_search_score(
    tiny_index: ColrankIndex, fusion: str, first_stage: str
) -> None:
    every = len(CORPUS)
    for query in QUERIES:
        hits = tiny_index.search(
            query, k=every, candidates=every, first_stage=first_stage, rerank_fusion=fusion
        )
        assert hits, query
        docs = [Document(h.text, h.id, h.metadata) for h in hits]
        random.Random(len(query)).shuffle(docs)  # the order given does not matter
        again = tiny_index.rerank(query, docs, first_stage=first_stage, rerank_fusion=fusion)
        searched = {h.id: h.score for h in hits}
        reranked = {h.id: h.score for h in again}
        assert reranked.keys() == searched.keys()
        for doc_id, score in searched.items():
            assert reranked[doc_id] == pytest.approx(score, abs=1e-5), (query, doc_id)
        assert all(docs[h.position].id == h.id for h in again)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_framework_rerankers_over_an_index_give_the_search_score(
    tiny_index: ColrankIndex, fusion: str
) -> None:
    config = tiny_index.config.model_copy(update={"search": SearchConfig(rerank_fusion=fusion)})
    index = ColrankIndex(config, backend=tiny_index.backend)  # the same collection
    every = len(CORPUS)
    query = QUERIES[0]
    hits = index.search(query, k=every, candidates=every)
    searched = {h.id: h.score for h in hits}

    lc_docs = [LCDocument(page_content=h.text, id=h.id) for h in hits]
    compressed = ColrankReranker(index=index, top_n=None).compress_documents(lc_docs, query)
    nodes = [NodeWithScore(node=TextNode(text=h.text, id_=h.id), score=0.0) for h in hits]
    reranked = ColrankRerank(index, top_n=every).postprocess_nodes(nodes, QueryBundle(query))

    for doc in compressed:
        assert doc.metadata["relevance_score"] == pytest.approx(searched[doc.id], abs=1e-5)
    for node in reranked:
        assert node.score == pytest.approx(searched[node.node.node_id], abs=1e-5)
    assert len(compressed) == len(reranked) == len(hits)
