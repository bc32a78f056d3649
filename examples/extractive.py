"""A deterministic, offline stand-in for an LLM, shared by the RAG examples.

It answers with the context sentence that shares the most words with the question
(ties: the earlier sentence). Good enough to show a RAG chain end to end with no model
download; configure a real LLM (see each example's docstring) for real answers.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "to",
    "is",
    "are",
    "and",
    "or",
    "how",
    "what",
    "why",
    "which",
    "who",
    "does",
    "do",
    "did",
    "for",
    "with",
    "by",
    "it",
    "its",
    "you",
}


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def best_sentence(question: str, context: str) -> str:
    """The context sentence with the largest word overlap with the question."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", context) if s.strip()]
    if not sentences:
        return "I could not find an answer in the retrieved context."
    wanted = words(question)
    return max(sentences, key=lambda s: len(wanted & words(s)))


def split_prompt(prompt: str) -> tuple[str, str]:
    """(question, context) from a prompt laid out as 'Context: ... Question: ...'."""
    context, _, question = prompt.rpartition("Question:")
    context = context.split("Context:", 1)[-1]
    return question.strip(), context.strip()
