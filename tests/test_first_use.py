"""A new user's first ten minutes, copied from the README and docs: each finding has a test."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core import Document as LIDocument
from llama_index.core.schema import QueryBundle, TextNode

from colrank import ColrankConfig, ModelMismatchError
from colrank.config import OFFLINE_MODEL
from colrank.integrations import langchain as lc
from colrank.integrations import llama_index as li
from colrank.integrations.langchain_store import ColrankVectorStore as LCStore
from colrank.integrations.llama_index_store import PLACEHOLDER
from colrank.integrations.llama_index_store import ColrankVectorStore as LIStore

from .conftest import CORPUS

DOCS = [LCDocument(page_content=t, metadata=m, id=i) for i, t, m in CORPUS[:6]]


def test_langchain_from_documents_needs_no_embedding(tiny_config) -> None:
    store = LCStore.from_documents(DOCS, config=tiny_config)
    assert [d.id for d in store.get_by_ids(["geo-paris"])] == ["geo-paris"]
    assert store.similarity_search("capital of germany", k=2)


@pytest.mark.parametrize("face", ["langchain", "llama_index"])
def test_a_reranker_named_offline_loads_both_offline_models(face, monkeypatch) -> None:
    for name in ("COLRANK_OFFLINE", "COLRANK_DENSE_MODEL", "COLRANK_COLBERT_MODEL"):
        monkeypatch.delenv(name, raising=False)  # the defaults are the hub models
    texts = ["Yeast makes bread rise.", "Paris is in France."]
    if face == "langchain":
        reranker = lc.ColrankReranker(model=OFFLINE_MODEL, device="cpu")
        out = reranker.compress_documents([LCDocument(page_content=t) for t in texts], "bread")
        assert out[0].page_content == texts[0]
    else:
        config = ColrankConfig.offline(runtime={"show_progress": False})
        rerank = li.ColrankRerank(model=OFFLINE_MODEL, device="cpu", config=config)
        nodes = rerank.postprocess_nodes(
            [li.NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts],
            QueryBundle("bread"),
        )
        assert nodes[0].node.get_content() == texts[0]
    index = reranker.ranker if face == "langchain" else rerank._index
    names = index.encoders.names
    assert names == (OFFLINE_MODEL, OFFLINE_MODEL)


def test_a_langchain_store_with_its_own_embeddings_reopens(tiny_config, tmp_path) -> None:
    embedding = DeterministicFakeEmbedding(size=16)
    store = LCStore.from_documents(DOCS, embedding, config=tiny_config)
    before = store.similarity_search_with_score("capital of germany", k=3)
    store.save(tmp_path / "idx")
    with pytest.raises(ModelMismatchError, match="embedding="):
        LCStore.load(tmp_path / "idx", trust_models=True)
    again = LCStore.load(tmp_path / "idx", embedding=embedding, trust_models=True)
    assert again.embeddings is embedding
    after = again.similarity_search_with_score("capital of germany", k=3)
    assert [(d.id, round(s, 5)) for d, s in after] == [(d.id, round(s, 5)) for d, s in before]


def test_llama_index_store_needs_no_embed_model_and_encodes_each_node_once(
    tiny_config, monkeypatch
) -> None:
    from llama_index.core import Settings

    monkeypatch.setattr(Settings, "_embed_model", None)  # as in a fresh process
    store = LIStore(config=tiny_config)
    encoded: list[str] = []
    pair = store.client.encoders
    original = pair.encode_documents

    def counting(texts, **kwargs):
        encoded.extend(texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(pair, "encode_documents", counting)
    dense_calls: list[int] = []
    dense = store.client.dense_encoder
    dense_encode = dense.encode

    def dense_counting(texts, **kwargs):
        dense_calls.append(len(texts))
        return dense_encode(texts, **kwargs)

    monkeypatch.setattr(dense, "encode", dense_counting)
    docs = [LIDocument(text=t, id_=i) for i, t, _ in CORPUS[:5]]
    index = store.as_index(docs)  # would ask for OpenAI if LlamaIndex's default were used
    assert len(encoded) == len(store.client) == 5  # one encode per node, by colrank
    assert dense_calls == []
    assert store.embed_model.get_text_embedding("x") == list(PLACEHOLDER)
    nodes = index.as_retriever(similarity_top_k=1).retrieve("capital of germany")
    assert nodes[0].node.ref_doc_id == "geo-berlin"


def test_llama_index_store_warns_when_chunks_are_cut_and_its_parser_fits(tiny_config) -> None:
    store = LIStore(config=tiny_config)
    limit = store.client.colbert_encoder.document_length
    long_text = "Bread dough rises because yeast ferments sugars. " * limit
    with pytest.warns(UserWarning, match=r"1 of 2 nodes .*store.node_parser"):
        store.add([TextNode(text=long_text, id_="long"), TextNode(text="short", id_="short")])
    chunks = store.node_parser().get_nodes_from_documents([LIDocument(text=long_text)])
    assert len(chunks) > 1
    assert store.client.colbert_encoder.count_truncated([c.get_content() for c in chunks]) == 0
