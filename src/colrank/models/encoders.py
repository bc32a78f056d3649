"""Dense and late-interaction encoders with device-aware, token-budget batching.

Both encoders tokenize once to learn each text's length, group texts into batches of
roughly equal padded size (:func:`colrank.device.token_budget_batches`), halve a batch
that runs out of accelerator memory, and return results in input order.

Example:
    >>> from colrank.config import ColrankConfig
    >>> cfg = ColrankConfig.offline()
    >>> dense = DenseEncoder.load(cfg.models.dense_model, cfg.runtime)  # doctest: +SKIP
    >>> dense.encode(["a question"]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from colrank.config import DEFAULT_STAND_IN_INPUTS, ModelConfig, RuntimeConfig, StandInInputs
from colrank.models.device import (
    empty_device_cache,
    resolve_device,
    resolve_dtype,
    run_batches,
    token_budget_batches,
)
from colrank.models.loading import load_colbert, load_sentence_transformer

logger = logging.getLogger(__name__)


def model_lock(model: Any) -> threading.Lock:
    """One lock per model object, shared by every encoder that uses it.

    Hugging Face fast tokenizers refuse concurrent use ("Already borrowed"), and models
    are shared between indexes (see models.py), so each model encodes one call at a time.
    """
    with _LOCKS_GUARD:
        lock = getattr(model, "_colrank_lock", None)
        if lock is None:
            lock = threading.Lock()
            object.__setattr__(model, "_colrank_lock", lock)
        return lock


_LOCKS_GUARD = threading.Lock()


def _token_lengths(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Untruncated token counts (special tokens included)."""
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


class _BatchedEncoder:
    """Shared batching plumbing; subclasses say how one batch is encoded."""

    name: str
    device: str
    runtime: RuntimeConfig

    def _encode_batched(
        self,
        texts: Sequence[str],
        lengths: Sequence[int],
        encode_batch: Callable[[list[str]], Sequence[Any]],
        *,
        desc: str,
        progress: bool | None,
    ) -> list[Any]:
        batches = token_budget_batches(
            lengths, self.runtime.token_budget, self.runtime.max_batch_size
        )
        show = self.runtime.show_progress if progress is None else progress
        return run_batches(
            batches,
            lambda idx: encode_batch([texts[i] for i in idx]),
            n_items=len(texts),
            on_oom=lambda: empty_device_cache(self.device),
            progress=show and len(texts) > 1,
            desc=desc,
        )


class DenseEncoder(_BatchedEncoder):
    """A sentence-transformers model giving one L2-normalised vector per text."""

    def __init__(self, model: Any, runtime: RuntimeConfig, name: str) -> None:
        self.model = model
        self.runtime = runtime
        self.name = name
        self.device = str(model.device)
        self.max_length = int(getattr(model, "max_seq_length", 512) or 512)

    @classmethod
    def load(
        cls, spec: str, runtime: RuntimeConfig | None = None, *, trust_remote_code: bool = False
    ) -> DenseEncoder:
        """Load from a hub id, local path or alias, on the configured device and dtype.

        ``trust_remote_code`` runs the model code a checkpoint ships (trusted models only).
        """
        runtime = runtime or RuntimeConfig()
        device = resolve_device(runtime.device)
        dtype = resolve_dtype(device, runtime.dtype)
        model = load_sentence_transformer(spec, device, dtype, trust_remote_code=trust_remote_code)
        return cls(model, runtime, spec)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Encode texts to a ``(n, dim)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with model_lock(self.model):
            return self._encode(texts, progress)

    def _encode(self, texts: Sequence[str], progress: bool | None) -> np.ndarray:
        lengths = [min(n, self.max_length) for n in _token_lengths(self.model.tokenizer, texts)]

        def encode_batch(batch: list[str]) -> np.ndarray:
            out = self.model.encode(
                batch,
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(out, dtype=np.float32)

        rows = self._encode_batched(
            texts, lengths, encode_batch, desc="Dense encoding", progress=progress
        )
        return np.stack(rows).astype(np.float32, copy=False)


class ColbertEncoder(_BatchedEncoder):
    """A PyLate ColBERT model: token embeddings for queries and documents."""

    def __init__(self, model: Any, runtime: RuntimeConfig, name: str) -> None:
        self.model = model
        self.runtime = runtime
        self.name = name
        self.device = str(model.device)

    @classmethod
    def load(
        cls,
        spec: str,
        runtime: RuntimeConfig | None = None,
        *,
        query_length: int | None = None,
        document_length: int | None = None,
        trust_remote_code: bool = False,
        stand_in_inputs: StandInInputs = DEFAULT_STAND_IN_INPUTS,
        **markers: Any,
    ) -> ColbertEncoder:
        """Load from a hub id, local path or alias, on the configured device and dtype.

        ``trust_remote_code`` runs the model code a checkpoint ships (trusted models only);
        ``markers`` (``query_prefix``, ``document_prefix``, ``attend_to_expansion_tokens``)
        override the checkpoint's own. ``stand_in_inputs`` applies to a plain encoder used
        as a stand-in ColBERT (``ModelConfig.stand_in_inputs``); a ColBERT checkpoint reads
        its own way.
        """
        runtime = runtime or RuntimeConfig()
        device = resolve_device(runtime.device)
        model = load_colbert(
            spec,
            device,
            resolve_dtype(device, runtime.dtype),
            query_length=query_length,
            document_length=document_length,
            trust_remote_code=trust_remote_code,
            stand_in_inputs=stand_in_inputs,
            **markers,
        )
        return cls(model, runtime, spec)

    @classmethod
    def for_models(cls, models: ModelConfig, runtime: RuntimeConfig) -> ColbertEncoder:
        """``models.colbert_model`` with every ColBERT setting of ``models``."""
        return cls.load(
            models.colbert_model,
            runtime,
            query_length=models.query_length,
            document_length=models.document_length,
            trust_remote_code=models.trust_remote_code,
            query_prefix=models.query_prefix,
            document_prefix=models.document_prefix,
            attend_to_expansion_tokens=models.attend_to_expansion_tokens,
            stand_in_inputs=models.stand_in_inputs,
        )

    @property
    def dim(self) -> int:
        """Token embedding dimension (after the projection)."""
        return int(self.model[-1].out_features)

    @property
    def is_stand_in(self) -> bool:
        """True for a plain encoder used as a ColBERT (identity projection, untrained)."""
        return bool(getattr(self.model, "colrank_stand_in", False))

    @property
    def stand_in_inputs(self) -> StandInInputs | None:
        """How a stand-in reads text (``"plain"`` / ``"marked"``); None for a checkpoint."""
        return getattr(self.model, "colrank_stand_in_inputs", None) if self.is_stand_in else None

    @property
    def marker_tokens(self) -> int:
        """Tokens a document marker adds (0 when the model reads documents without one)."""
        return 0 if getattr(self.model, "document_prefix_id", None) is None else 1

    @property
    def document_length(self) -> int:
        """Tokens kept per document, markers included."""
        return int(self.model.document_length)

    @property
    def query_length(self) -> int:
        """Tokens per query (queries are padded to it with [MASK] when expansion is on)."""
        return int(self.model.query_length)

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One ``(query_length, dim)`` float32 array per query."""
        with model_lock(self.model):
            out = self.model.encode(
                list(texts),
                is_query=True,
                batch_size=max(1, min(len(texts), self.runtime.max_batch_size)),
                show_progress_bar=False,
            )
        return [np.asarray(e, dtype=np.float32) for e in out]

    def pool(self, token_sets: Sequence[np.ndarray], pool_factor: int) -> list[np.ndarray]:
        """Pool already computed document tokens (PyLate's hierarchical pooling)."""
        import torch

        pooled = self.model.pool_embeddings_hierarchical(
            [torch.from_numpy(np.asarray(t, dtype=np.float32)) for t in token_sets],
            pool_factor=pool_factor,
            protected_tokens=1,
        )
        return [p.numpy() for p in pooled]

    def encode_documents(
        self, texts: Sequence[str], *, progress: bool | None = None, pool_factor: int = 1
    ) -> list[np.ndarray]:
        """One ``(n_tokens, dim)`` float32 array per document, in input order.

        Documents longer than :attr:`document_length` are truncated, with a warning.
        ``pool_factor`` > 1 clusters similar tokens and keeps their means (PyLate's
        hierarchical token pooling), storing about 1/pool_factor of the tokens.
        """
        if not texts:
            return []
        with model_lock(self.model):
            return self._encode_documents(texts, progress, pool_factor)

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` exceed :attr:`document_length` (cut when encoded)."""
        with model_lock(self.model):
            raw = _token_lengths(self.model.tokenizer, texts)
        return sum(n + self.marker_tokens > self.document_length for n in raw)

    def document_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens each document is encoded with (marker included), warning on truncation."""
        raw = [n + self.marker_tokens for n in _token_lengths(self.model.tokenizer, texts)]
        limit = self.document_length
        too_long = [n for n in raw if n > limit]
        if too_long:
            logger.warning(
                "%d of %d documents exceed document_length=%d tokens and were truncated "
                "(longest: %d tokens); split long documents into passages to keep all text.",
                len(too_long),
                len(texts),
                limit,
                max(too_long) - self.marker_tokens,
            )
        return [min(n, limit) for n in raw]

    def _encode_documents(
        self, texts: Sequence[str], progress: bool | None, pool_factor: int
    ) -> list[np.ndarray]:
        lengths = self.document_lengths(texts)

        def encode_batch(batch: list[str]) -> list[np.ndarray]:
            out = self.model.encode(
                batch,
                is_query=False,
                batch_size=len(batch),
                show_progress_bar=False,
                pool_factor=pool_factor,
            )
            return [np.asarray(e, dtype=np.float32) for e in out]

        return self._encode_batched(
            texts, lengths, encode_batch, desc="ColBERT encoding", progress=progress
        )


__all__ = ["ColbertEncoder", "DenseEncoder"]
