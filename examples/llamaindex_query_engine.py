"""A LlamaIndex query engine over a colrank index, offline by default.

    python examples/llamaindex_query_engine.py ["your question"] [--corpus PATH]

Part 1 builds a colrank index from LlamaIndex Documents and answers through a
RetrieverQueryEngine. Part 2 keeps a plain VectorStoreIndex as the retriever and adds
colrank's ColrankRerank as a node postprocessor. With no LLM configured, a deterministic
extractive answerer (examples/extractive.py) stands in for the LLM. For a real model:

    COLRANK_LLM=ollama:llama3.2     # pip install llama-index-llms-ollama (local Ollama server)
    COLRANK_LLM=openai:gpt-4o-mini  # pip install llama-index-llms-openai; OPENAI_API_KEY
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from extractive import best_sentence, split_prompt
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import (
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.prompts import PromptTemplate
from llama_index.core.query_engine import RetrieverQueryEngine

from colrank import ColrankConfig, DenseEncoder
from colrank.cli import _quiet_third_party
from colrank.eval.corpus import read_corpus
from colrank.integrations.llama_index import ColrankRerank, ColrankRetriever

HERE = Path(__file__).resolve().parent
QA_PROMPT = PromptTemplate("Context:\n{context_str}\n\nQuestion: {query_str}\n")


class ExtractiveLLM(CustomLLM):
    """Deterministic offline stand-in: answers with the best-matching context sentence."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="extractive-offline")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        question, context = split_prompt(prompt)
        return CompletionResponse(text=best_sentence(question, context))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        yield self.complete(prompt)


class LocalMiniLMEmbedding(BaseEmbedding):
    """The bundled MiniLM as a LlamaIndex embedding model (for the VectorStoreIndex part)."""

    _encoder: DenseEncoder = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model_name="offline:minilm", **kwargs)
        self._encoder = DenseEncoder.load("offline:minilm")

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode([query], progress=False)[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(texts, progress=False).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def make_llm() -> Any:
    provider, _, model = os.environ.get("COLRANK_LLM", "").partition(":")
    if provider == "ollama":
        from llama_index.llms.ollama import Ollama

        return Ollama(model=model, request_timeout=120)
    if provider == "openai":
        from llama_index.llms.openai import OpenAI

        return OpenAI(model=model, temperature=0)
    return ExtractiveLLM()


def show(title: str, response: Any) -> None:
    print(f"\n== {title}\nA: {response}\nSource nodes:")
    for n in response.source_nodes:
        meta = n.node.metadata
        # n.score is what the nodes are ranked by: the fused score from the colrank
        # retriever, the ColBERT score from ColrankRerank; the stages' own scores are in metadata.
        scores = "".join(
            f" {name}={meta[key]:.3f}"
            for name, key in (
                ("colbert", "colbert_score"),
                ("dense", "dense_score"),
                ("bm25", "bm25_score"),
                ("retrieval", "retrieval_score"),
            )
            if meta.get(key) is not None
        )
        print(f"  {n.node.node_id}  score={n.score:.3f}{scores}  {meta.get('title', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description="LlamaIndex query engine over colrank")
    parser.add_argument(
        "question", nargs="?", default="What made books cheaper in the fifteenth century?"
    )
    parser.add_argument("--corpus", default=str(HERE / "data" / "corpus.jsonl"))
    args = parser.parse_args()
    _quiet_third_party()

    ids, texts, metas = read_corpus(args.corpus)
    documents = [
        Document(text=t, id_=i, metadata=m, excluded_embed_metadata_keys=["topic"])
        for i, t, m in zip(ids, texts, metas, strict=True)
    ]
    config = (
        ColrankConfig.from_env()
        if os.environ.get("COLRANK_COLBERT_MODEL")
        else ColrankConfig.offline()
    )
    llm = make_llm()

    # 1. colrank as the retriever
    retriever = ColrankRetriever.from_documents(documents, config, similarity_top_k=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm, text_qa_template=QA_PROMPT)
    show("colrank retriever", engine.query(args.question))

    # 2. an existing VectorStoreIndex, reranked by colrank
    vector_index = VectorStoreIndex.from_documents(documents, embed_model=LocalMiniLMEmbedding())
    rerank = ColrankRerank(index=retriever.index, top_n=3, keep_retrieval_score=True)
    engine = vector_index.as_query_engine(
        llm=llm, similarity_top_k=10, node_postprocessors=[rerank], text_qa_template=QA_PROMPT
    )
    show("VectorStoreIndex top-10 -> ColrankRerank top-3", engine.query(args.question))


if __name__ == "__main__":
    main()
