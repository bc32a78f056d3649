"""Encodings of documents from outside the index, kept in byte-bounded LRU caches.

A document is encoded once (ColBERT tokens, and its dense vector when asked) and kept
by content hash in the cache's precision, also on its first sight, so it scores the
same every time it is seen.

Example:
    >>> from colrank import ColrankConfig
    >>> from colrank.models.pair import EncoderPair
    >>> outside = OutsideEncodings(EncoderPair(ColrankConfig.offline()), 2**20)
    >>> tokens, vectors = outside.encode(["Yeast makes CO2."], dense=True)
    >>> tokens[0].shape[1] == vectors[0].shape[0] == 384, len(outside.encode(["x"], False)[1])
    (True, 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from colrank.models.pair import EncoderPair
from colrank.rerank.cache import TokenCache, content_key


class OutsideEncodings:
    """ColBERT tokens (and dense vectors) of outside texts, encoded on a cache miss.

    Args:
        encoders: the dense and ColBERT encoders.
        cache_bytes: bytes of token embeddings to keep (dense vectors get an eighth).
    """

    def __init__(self, encoders: EncoderPair, cache_bytes: int) -> None:
        self.encoders = encoders
        self._tokens = TokenCache(cache_bytes)
        self._vectors = TokenCache(cache_bytes // 8, dtype="float32")

    def clear(self) -> None:
        """Forget cached encodings (e.g. after switching the ColBERT model)."""
        self._tokens.clear()
        self._vectors.clear()

    def encode(
        self, texts: Sequence[str], dense: bool
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Tokens of ``texts``, and their dense vectors when ``dense`` (else an empty list).

        Texts missing from a cache are encoded in one call of the encoder pair (one
        backbone call for both kinds when the models share it, in the configured engine).
        """
        keys = [content_key(t) for t in texts]
        caches = [self._tokens, self._vectors] if dense else [self._tokens]
        found: list[dict[str, np.ndarray]] = [{} for _ in caches]
        for cache, hits in zip(caches, found, strict=True):
            for key in keys:
                value = cache.get(key)
                if value is not None:
                    hits[key] = value
        missing = list(dict.fromkeys(k for k in keys if any(k not in hits for hits in found)))
        if missing:
            first_text = dict(zip(keys, texts, strict=True))
            batch = [first_text[key] for key in missing]
            if dense:
                vectors, tokens = self.encoders.encode_documents(batch, progress=False)
                encoded = [tokens, list(vectors)]
            else:
                encoded = [self.encoders.encode_document_tokens(batch, progress=False)]
            for cache, hits, values in zip(caches, found, encoded, strict=True):
                for key, value in zip(missing, values, strict=True):
                    hits[key] = np.asarray(value, dtype=cache.dtype)
                    cache.put(key, hits[key])
        out = [[np.asarray(hits[key], dtype=np.float32) for key in keys] for hits in found]
        return out[0], (out[1] if dense else [])


__all__ = ["OutsideEncodings"]
