"""colrank: hybrid recall (dense + BM25) in front of ColBERT MaxSim reranking, for RAG chains.

Example:
    >>> import colrank
    >>> index = colrank.ColrankIndex(colrank.ColrankConfig.offline())  # doctest: +SKIP
    >>> index.add(["Paris is the capital of France."], ids=["d1"])    # doctest: +SKIP
    >>> index.search("capital of France", k=1)[0].id                  # doctest: +SKIP
    'd1'

The LangChain and LlamaIndex faces live in ``colrank.integrations.langchain`` and
``colrank.integrations.llama_index`` (imported on demand so ``import colrank`` stays
framework-free).
"""

from __future__ import annotations

__version__ = "0.1.0"

from colrank.config import (
    ColrankConfig,
    DenseIndexConfig,
    ModelConfig,
    MuveraConfig,
    RuntimeConfig,
    SearchConfig,
    TokenStoreConfig,
)
from colrank.errors import (
    ColrankError,
    CorruptIndexError,
    DimensionMismatchError,
    DuplicateIdError,
    EmptyCorpusError,
    EmptyQueryError,
    IndexNotFoundError,
    InvalidFilterError,
    InvalidInputError,
    ModelLoadError,
    ModelMismatchError,
    OutOfMemoryError,
    StoreUnavailableError,
    UnknownIdError,
    UnsupportedStageError,
    UntrustedModelError,
)
from colrank.index import ColrankIndex
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.rerank.maxsim import maxsim_flat, maxsim_ragged, maxsim_scores
from colrank.results import Document, Hit

__all__ = [
    "ColbertEncoder",
    "ColrankConfig",
    "ColrankError",
    "ColrankIndex",
    "CorruptIndexError",
    "DenseEncoder",
    "DenseIndexConfig",
    "DimensionMismatchError",
    "Document",
    "DuplicateIdError",
    "EmptyCorpusError",
    "EmptyQueryError",
    "Hit",
    "IndexNotFoundError",
    "InvalidFilterError",
    "InvalidInputError",
    "ModelConfig",
    "ModelLoadError",
    "ModelMismatchError",
    "MuveraConfig",
    "OutOfMemoryError",
    "RuntimeConfig",
    "SearchConfig",
    "StoreUnavailableError",
    "TokenStoreConfig",
    "UnknownIdError",
    "UnsupportedStageError",
    "UntrustedModelError",
    "__version__",
    "maxsim_flat",
    "maxsim_ragged",
    "maxsim_scores",
]
