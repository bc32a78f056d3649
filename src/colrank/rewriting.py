"""Rewrite a collection's stored tokens without touching the rest of it.

``recode`` changes how the tokens are stored (codec, token pooling) from the stored
vectors; ``reencode`` encodes every stored text again with another ColBERT (e.g. after
``colrank finetune``). Both run beside searches, which see the old tokens until the new
store is swapped in whole.

Both take the collection's backend, its encoders and settings, and return the new settings
(:meth:`ColrankIndex.recode_tokens <colrank.index.ColrankIndex.recode_tokens>` and
``reencode_tokens`` call them).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from colrank.config import ColrankConfig
from colrank.models.encoders import ColbertEncoder
from colrank.models.pair import EncoderPair
from colrank.store.base import StorageBackend, StoredDoc, TokenProducer


def recode(
    backend: StorageBackend,
    encoders: EncoderPair,
    config: ColrankConfig,
    codec: str | None,
    pool_factor: int,
    progress: bool | None,
) -> ColrankConfig:
    """Store the tokens with ``codec`` and/or pool them; returns the index's new config."""
    info = backend.info
    codec = codec or info.codec

    def produce(_docs: list[StoredDoc], tokens: list[np.ndarray]) -> list[np.ndarray]:
        return encoders.colbert.pool(tokens, pool_factor) if pool_factor > 1 else tokens

    colbert = info.colbert_model or encoders.names[1]
    pooled = info.pool_factor * pool_factor
    return _rewrite(backend, config, produce, codec, pooled, colbert, progress)


def reencode(
    backend: StorageBackend,
    encoders: EncoderPair,
    config: ColrankConfig,
    colbert_model: str,
    progress: bool | None,
) -> ColrankConfig:
    """Encode every stored text with another ColBERT; returns the index's new config."""
    models = config.models.model_copy(update={"colbert_model": colbert_model})
    encoder = ColbertEncoder.for_models(models, encoders.runtime)
    info = backend.info

    def produce(docs: list[StoredDoc], _tokens: list[np.ndarray]) -> list[np.ndarray]:
        texts = [d.text for d in docs]
        return encoder.encode_documents(texts, progress=False, pool_factor=info.pool_factor)

    updated = _rewrite(
        backend, config, produce, info.codec, info.pool_factor, colbert_model, progress
    )
    encoders.swap_colbert(encoder)
    return updated.model_copy(update={"models": models})


def _rewrite(
    backend: StorageBackend,
    config: ColrankConfig,
    produce: TokenProducer,
    codec: str,
    pool_factor: int,
    colbert_model: str,
    progress: bool | None,
) -> ColrankConfig:
    show = config.runtime.show_progress if progress is None else progress
    with backend.read() as view:
        total = view.count()
    with tqdm(total=total, desc="Rewriting tokens", disable=not show) as bar:
        backend.rewrite_tokens(
            produce,
            codec=codec,
            pool_factor=pool_factor,
            colbert_model=colbert_model,
            on_progress=bar.update,
        )
    store = config.token_store.model_copy(update={"codec": codec, "pool_factor": pool_factor})
    return config.model_copy(update={"token_store": store})


__all__ = ["recode", "reencode"]
