"""A LangChain LCEL RAG chain over a colrank index, offline by default.

    python examples/langchain_rag.py ["your question"] [--corpus PATH] [-k 3]

The retriever is colrank (FAISS dense recall -> ColBERT MaxSim). With no LLM configured
the chain uses a deterministic extractive answerer (examples/extractive.py), so it runs
with no network. To use a real model, install its LangChain package and set:

    COLRANK_LLM=ollama:llama3.2            # pip install langchain-ollama (local Ollama server)
    COLRANK_LLM=openai:gpt-4o-mini         # pip install langchain-openai; OPENAI_API_KEY,
                                           # optional OPENAI_BASE_URL for compatible servers
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from extractive import best_sentence, split_prompt
from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from colrank import ColrankConfig
from colrank.cli import _quiet_third_party
from colrank.eval.corpus import read_corpus
from colrank.integrations.langchain import ColrankRetriever

HERE = Path(__file__).resolve().parent
PROMPT = ChatPromptTemplate.from_template(
    "Answer the question using only the context.\n\nContext:\n{context}\n\nQuestion: {question}"
)


def make_llm() -> Runnable:
    """A real chat model when COLRANK_LLM is set, otherwise the extractive stand-in."""
    spec = os.environ.get("COLRANK_LLM", "")
    provider, _, model = spec.partition(":")
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(model=model, temperature=0)
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=model, temperature=0)

    def extract(prompt: PromptValue) -> AIMessage:
        question, context = split_prompt(prompt.to_string())
        return AIMessage(content=best_sentence(question, context))

    return RunnableLambda(extract)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(d.page_content for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description="LCEL RAG chain over colrank")
    parser.add_argument("question", nargs="?", default="Why does bread dough rise?")
    parser.add_argument("--corpus", default=str(HERE / "data" / "corpus.jsonl"))
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args()
    _quiet_third_party()

    ids, texts, metas = read_corpus(args.corpus)
    config = (
        ColrankConfig.from_env()
        if os.environ.get("COLRANK_COLBERT_MODEL")
        else ColrankConfig.offline()
    )
    retriever = ColrankRetriever.from_texts(
        texts, metas, ids, config=config, k=args.k, candidates=30
    )

    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | make_llm()
        | StrOutputParser()
    )
    answer = chain.invoke(args.question)
    print(f"\nQ: {args.question}\nA: {answer}\n\nSources:")
    for doc in retriever.invoke(args.question):
        m = doc.metadata
        print(
            f"  {m['rank']}. {doc.id}  colbert={m['colbert_score']:.2f}  dense={m['dense_score']:.3f}  {m.get('title', '')}"
        )


if __name__ == "__main__":
    main()
