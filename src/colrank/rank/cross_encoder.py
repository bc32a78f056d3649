"""Optional third stage: a sentence-transformers ``CrossEncoder`` over the top few.

Off by default (``SearchConfig.cross_encoder_model = None``). A cross-encoder reads
query and document together, so it is accurate but costs one forward pass per
document per query; colrank applies it only to the best ``cross_encoder_top``
documents after ColBERT.

Example:
    >>> scorer = CrossEncoderScorer.load("cross-encoder/ms-marco-MiniLM-L6-v2")  # doctest: +SKIP
    >>> scorer.score("question", ["passage one", "passage two"])                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from colrank.config import RuntimeConfig
from colrank.errors import ModelLoadError
from colrank.models.device import resolve_device
from colrank.models.encoders import model_lock
from colrank.models.loading import cached_model, resolve_model_path


class CrossEncoderScorer:
    """Scores (query, document) pairs with a sentence-transformers CrossEncoder."""

    def __init__(self, model: Any, name: str, batch_size: int = 32) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def load(cls, spec: str, runtime: RuntimeConfig | None = None) -> CrossEncoderScorer:
        """Load (once per process) from a hub id or local path."""
        runtime = runtime or RuntimeConfig()
        device = resolve_device(runtime.device)

        def build() -> Any:
            from sentence_transformers import CrossEncoder

            try:
                return CrossEncoder(resolve_model_path(spec), device=device)
            except Exception as exc:
                raise ModelLoadError(f"could not load cross-encoder {spec!r}: {exc}") from exc

        return cls(cached_model(("cross-encoder", spec, device), build), spec)

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance score per text."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        with model_lock(self.model):
            out = self.model.predict(
                [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)[:, -1]


__all__ = ["CrossEncoderScorer"]
