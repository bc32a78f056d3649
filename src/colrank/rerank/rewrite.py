"""Rewrite a collection's stored tokens without touching the rest of it.

``recode`` changes how the tokens are stored (codec, token pooling) from the stored
vectors; ``reencode`` encodes every stored text again with another ColBERT (e.g. after
``colrank finetune``). Both run beside searches, which see the old tokens until the new
store is swapped in whole.

Example:
    >>> index.config = recode(index, "int8", pool_factor=1, progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from colrank.config import ColrankConfig
from colrank.models.encoders import ColbertEncoder
from colrank.store.base import StoredDoc, TokenProducer

if TYPE_CHECKING:
    from colrank.index import ColrankIndex


def recode(
    index: ColrankIndex, codec: str | None, pool_factor: int, progress: bool | None
) -> ColrankConfig:
    """Store the tokens with ``codec`` and/or pool them; returns the index's new config."""
    info = index.backend.info
    codec = codec or info.codec

    def produce(_docs: list[StoredDoc], tokens: list[np.ndarray]) -> list[np.ndarray]:
        return index.colbert_encoder.pool(tokens, pool_factor) if pool_factor > 1 else tokens

    colbert = info.colbert_model or index.encoders.names[1]
    return _rewrite(index, produce, codec, info.pool_factor * pool_factor, colbert, progress)


def reencode(index: ColrankIndex, colbert_model: str, progress: bool | None) -> ColrankConfig:
    """Encode every stored text with another ColBERT; returns the index's new config."""
    config = index.config
    models = config.models.model_copy(update={"colbert_model": colbert_model})
    encoder = ColbertEncoder.load(
        colbert_model,
        config.runtime,
        query_length=models.query_length,
        document_length=models.document_length,
    )
    info = index.backend.info

    def produce(docs: list[StoredDoc], _tokens: list[np.ndarray]) -> list[np.ndarray]:
        texts = [d.text for d in docs]
        return encoder.encode_documents(texts, progress=False, pool_factor=info.pool_factor)

    updated = _rewrite(index, produce, info.codec, info.pool_factor, colbert_model, progress)
    index.encoders.swap_colbert(encoder)
    return updated.model_copy(update={"models": models})


def _rewrite(
    index: ColrankIndex,
    produce: TokenProducer,
    codec: str,
    pool_factor: int,
    colbert_model: str,
    progress: bool | None,
) -> ColrankConfig:
    show = index.config.runtime.show_progress if progress is None else progress
    with tqdm(total=len(index), desc="Rewriting tokens", disable=not show) as bar:
        index.backend.rewrite_tokens(
            produce,
            codec=codec,
            pool_factor=pool_factor,
            colbert_model=colbert_model,
            on_progress=bar.update,
        )
    store = index.config.token_store.model_copy(update={"codec": codec, "pool_factor": pool_factor})
    return index.config.model_copy(update={"token_store": store})


__all__ = ["recode", "reencode"]
