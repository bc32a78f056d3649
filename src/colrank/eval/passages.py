"""Long files -> passages that fit the ColBERT document length, with overlap.

A ColBERT model keeps ``document_length`` tokens of a document (256 for the offline
stand-in); the rest would be cut off. So ``colrank index`` on a folder splits each file
into passages of at most ``max_tokens`` tokens *of the ColBERT model's own tokenizer*,
consecutive passages sharing ``overlap`` tokens, cutting at paragraph, then sentence,
then word boundaries where it can. The splitting is LangChain's
``RecursiveCharacterTextSplitter`` (``langchain-text-splitters``, a well-kept library,
token-aware through a Hugging Face tokenizer); this module only chooses its settings.

Example:
    >>> split = PassageSplitter.from_counter(lambda text: len(text.split()), 8, 2)
    >>> [len(p.split()) <= 8 for p in split("one two three. " * 6)]
    [True, True, True]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from colrank.errors import InvalidInputError

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


class PassageSplitter:
    """Split a text into passages of at most ``max_tokens`` tokens, ``overlap`` shared."""

    def __init__(self, splitter: Any) -> None:
        self._splitter = splitter

    @classmethod
    def from_counter(
        cls, count_tokens: Callable[[str], int], max_tokens: int, overlap: int
    ) -> PassageSplitter:
        """Passages measured by ``count_tokens`` (e.g. a tokenizer's token count)."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if max_tokens < 8 or not 0 <= overlap < max_tokens:
            raise InvalidInputError(
                f"passages need max_tokens >= 8 and 0 <= overlap < max_tokens "
                f"(got {max_tokens}, {overlap})"
            )
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=max_tokens,
            chunk_overlap=overlap,
            length_function=count_tokens,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )
        return cls(splitter)

    @classmethod
    def for_model(cls, model_path: str, max_tokens: int, overlap: int) -> PassageSplitter:
        """Passages measured in tokens of the model at ``model_path`` (its tokenizer)."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path)

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

        return cls.from_counter(count, max_tokens, overlap)

    def __call__(self, text: str) -> list[str]:
        """The passages of ``text`` (one when it fits already)."""
        return [p for p in self._splitter.split_text(text) if p.strip()]


__all__ = ["PassageSplitter"]
