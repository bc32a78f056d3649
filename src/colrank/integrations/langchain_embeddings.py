"""A LangChain ``Embeddings`` model as colrank's dense encoder.

Lets a :class:`~colrank.integrations.langchain_store.ColrankVectorStore` use the
embeddings a LangChain application already has for the dense first stage (the ColBERT
stage keeps colrank's own model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

EMBEDDINGS_PREFIX = "langchain:"  # model name of a LangChain Embeddings, e.g. "langchain:Foo"


class EmbeddingsEncoder:
    """A LangChain ``Embeddings`` model as colrank's dense encoder (unit vectors).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> EmbeddingsEncoder(DeterministicFakeEmbedding(size=6)).encode(["x"]).shape
        (1, 6)
    """

    def __init__(self, embeddings: Embeddings, name: str | None = None) -> None:
        self.embeddings = embeddings
        self.name = name or f"{EMBEDDINGS_PREFIX}{type(embeddings).__name__}"
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Embedding dimension (asked of the model once)."""
        if self._dim is None:
            self._dim = len(self.embeddings.embed_query("dimension"))
        return self._dim

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Unit vectors of ``texts`` (one query embedding when there is one text)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self.embeddings.embed_documents(list(texts))
        vectors = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


__all__ = ["EMBEDDINGS_PREFIX", "EmbeddingsEncoder"]
