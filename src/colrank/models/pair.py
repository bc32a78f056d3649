"""The two encoders a collection uses, loaded on first use, behind one object.

Indexing and queries ask for both kinds of embedding at once (dense vector and
ColBERT tokens), so they ask this object, not the two encoders: whether both come
from separate models or, later, from one shared forward pass is a property of the
models, not of the search code.

Example:
    >>> from colrank.config import ColrankConfig
    >>> pair = EncoderPair(ColrankConfig.offline())          # nothing is loaded yet
    >>> pair.names
    ('offline:minilm', 'offline:minilm')
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from colrank.config import ColrankConfig
from colrank.models.encoders import ColbertEncoder, DenseEncoder


class EncoderPair:
    """A dense encoder and a ColBERT encoder, each loaded when first needed.

    Args:
        config: which models, on which device (``config.models``, ``config.runtime``).
        dense: an already loaded dense encoder (used instead of ``config``'s).
        colbert: an already loaded ColBERT encoder (used instead of ``config``'s).
    """

    def __init__(
        self,
        config: ColrankConfig,
        dense: DenseEncoder | None = None,
        colbert: ColbertEncoder | None = None,
    ) -> None:
        self.config = config
        self._dense = dense
        self._colbert = colbert
        self._loading = threading.Lock()

    @property
    def names(self) -> tuple[str, str]:
        """``(dense model, ColBERT model)`` as named in the config or by the given encoders."""
        models = self.config.models
        dense = self._dense.name if self._dense is not None else models.dense_model
        colbert = self._colbert.name if self._colbert is not None else models.colbert_model
        return dense, colbert

    @property
    def dense(self) -> DenseEncoder:
        """The dense (recall) encoder."""
        if self._dense is None:
            with self._loading:
                if self._dense is None:
                    self._dense = DenseEncoder.load(
                        self.config.models.dense_model, self.config.runtime
                    )
        return self._dense

    @property
    def colbert(self) -> ColbertEncoder:
        """The ColBERT (rerank) encoder."""
        if self._colbert is None:
            with self._loading:
                if self._colbert is None:
                    models = self.config.models
                    self._colbert = ColbertEncoder.load(
                        models.colbert_model,
                        self.config.runtime,
                        query_length=models.query_length,
                        document_length=models.document_length,
                    )
        return self._colbert

    def swap_colbert(self, encoder: ColbertEncoder) -> None:
        """Use another ColBERT encoder from now on (after re-encoding the stored tokens)."""
        self._colbert = encoder

    def encode_documents(
        self, texts: Sequence[str], *, pool_factor: int = 1, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Dense vectors ``(n, dense_dim)`` and token embeddings of documents."""
        vectors = self.dense.encode(texts, progress=progress)
        tokens = self.colbert.encode_documents(texts, progress=progress, pool_factor=pool_factor)
        return vectors, tokens

    def encode_queries(
        self, queries: Sequence[str], *, dense: bool = True
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Dense query vectors (None when ``dense`` is false) and query token embeddings."""
        vectors = self.dense.encode(queries, progress=False) if dense else None
        return vectors, self.colbert.encode_queries(queries)


__all__ = ["EncoderPair"]
