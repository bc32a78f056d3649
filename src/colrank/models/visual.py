"""A visual late-interaction encoder: a ColPali-family model over page images.

ColPali (PaliGemma) and ColQwen2 / ColQwen2.5 (Qwen2-VL) embed a page image as one
vector per image patch (about a thousand) and a text query as one vector per token,
all L2-normalised, and score with the same MaxSim as ColBERT. So the patch embeddings go
into the collection's token store unchanged (codecs, pooling, both backends), queries
are encoded with the model's query side, and :mod:`colrank.rerank.maxsim` scores them.

Batches are made by *patches*, not by images: a page costs its patch count (from the
model's processor: fixed for ColPali, by resolution for ColQwen2), and a batch holds at
most ``runtime.token_budget`` of them, with the out-of-memory back-off of
:func:`~colrank.models.device.run_batches`. transformers ships both model classes and
their processors (``ColPaliForRetrieval``, ``ColQwen2ForRetrieval``).

Example:
    >>> is_visual_model("vidore/colpali-v1.3-hf"), is_visual_model("offline:minilm")
    (True, False)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from colrank.config import RuntimeConfig
from colrank.errors import InvalidImageError, ModelLoadError
from colrank.models.device import (
    empty_device_cache,
    resolve_device,
    resolve_dtype,
    run_batches,
    token_budget_batches,
)
from colrank.models.encoders import model_lock
from colrank.models.loading import cached_model

logger = logging.getLogger(__name__)

# model_type in a checkpoint's config.json -> (model class, processor class) in transformers
VISUAL_MODEL_TYPES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
}
# hub ids of transformers-format checkpoints recognised without reading them
# (vidore/colpali-v1.3-hf, vidore/colqwen2-v1.0-hf; the ids without "-hf" are
# colpali-engine adapters, which transformers' classes do not load)
KNOWN_VISUAL_PREFIXES = ("vidore/colpali", "vidore/colqwen")


def visual_model_type(spec: str) -> str | None:
    """``colpali`` / ``colqwen2`` for a visual checkpoint (local folder or hub id), else None."""
    config = Path(spec) / "config.json"
    if config.is_file():
        try:
            kind = json.loads(config.read_text()).get("model_type")
        except (OSError, json.JSONDecodeError):
            return None
        return kind if kind in VISUAL_MODEL_TYPES else None
    lowered = spec.lower()
    if lowered.startswith(KNOWN_VISUAL_PREFIXES) and lowered.endswith("-hf"):
        return "colqwen2" if "colqwen" in lowered else "colpali"
    return None


def is_visual_model(spec: str) -> bool:
    """Whether ``spec`` names a ColPali-family checkpoint (it encodes page images)."""
    return visual_model_type(spec) is not None


def load_visual(spec: str, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """Load (once per process) a visual retrieval model and its processor."""

    def build() -> tuple[Any, Any]:
        import transformers

        kind = visual_model_type(spec)
        if kind is None:
            raise ModelLoadError(f"{spec!r} is not a ColPali or ColQwen2 checkpoint")
        model_name, processor_name = VISUAL_MODEL_TYPES[kind]
        try:
            model = getattr(transformers, model_name).from_pretrained(spec, dtype=dtype)
            processor = getattr(transformers, processor_name).from_pretrained(spec)
        except Exception as exc:
            raise ModelLoadError(f"could not load the visual model {spec!r}: {exc}") from exc
        return model.to(device).eval(), processor

    return cached_model(("visual", spec, device, dtype), build)


class VisualEncoder:
    """Patch embeddings of page images, token embeddings of text queries.

    Args:
        model: a ``ColPaliForRetrieval`` or ``ColQwen2ForRetrieval``.
        processor: its processor (``process_images``, ``process_queries``).
        runtime: batching (``token_budget`` counts patches), progress bars.
        name: how the model is named in the index's config.
    """

    is_visual = True
    is_stand_in = False  # a trained retrieval model: its MaxSim gets the trained weight

    def __init__(self, model: Any, processor: Any, runtime: RuntimeConfig, name: str) -> None:
        self.model = model
        self.processor = processor
        self.runtime = runtime
        self.name = name
        self.device = str(model.device)

    @classmethod
    def load(cls, spec: str, runtime: RuntimeConfig | None = None, **_: Any) -> VisualEncoder:
        """Load from a hub id or local folder, on the configured device and dtype."""
        runtime = runtime or RuntimeConfig()
        device = resolve_device(runtime.device)
        model, processor = load_visual(spec, device, resolve_dtype(device, runtime.dtype))
        return cls(model, processor, runtime, spec)

    @property
    def dim(self) -> int:
        """Patch / token embedding dimension."""
        return int(self.model.embedding_dim)

    def patches(self, image: Any) -> int:
        """The rows a page image is encoded into (its cost in a batch)."""
        width, height = image.size
        try:
            counted = self.processor._get_num_multimodal_tokens(image_sizes=[[height, width]])
            return max(1, int(counted.num_image_tokens[0]))
        except (AttributeError, TypeError, KeyError, IndexError):  # another processor
            fixed = getattr(self.processor, "image_seq_length", None)
            return int(fixed) if fixed else max(1, width * height // (28 * 28))

    def _embed(self, inputs: Any) -> list[np.ndarray]:
        """The model's embeddings, one array per row of the batch, padding left out."""
        batch = {k: v.to(self.model.device) for k, v in inputs.items() if k != "labels"}
        with torch.inference_mode():
            out = self.model(**batch).embeddings
        mask = batch["attention_mask"].bool()
        return [e[m].float().cpu().numpy() for e, m in zip(out, mask, strict=True)]

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One ``(tokens, dim)`` float32 array per text query (the model's query side)."""
        out: list[np.ndarray] = []
        step = max(1, self.runtime.max_batch_size)
        with model_lock(self.model):
            for start in range(0, len(texts), step):
                chunk = list(texts[start : start + step])
                inputs = self.processor.process_queries(text=chunk, return_tensors="pt")
                out.extend(self._embed(inputs))
        return out

    def encode_images(
        self, images: Sequence[Any], *, progress: bool | None = None, pool_factor: int = 1
    ) -> list[np.ndarray]:
        """One ``(patches, dim)`` float32 array per RGB PIL image, in input order.

        ``pool_factor`` > 1 keeps about 1/pool_factor of the rows (PyLate's hierarchical
        pooling, as for text; the ColPali authors report little loss at 3).
        """
        if not images:
            return []
        costs = [self.patches(image) for image in images]
        batches = token_budget_batches(
            costs, self.runtime.token_budget, self.runtime.max_batch_size
        )

        def encode_batch(batch: list[int]) -> list[np.ndarray]:
            inputs = self.processor.process_images(
                images=[images[i] for i in batch], return_tensors="pt"
            )
            return self._embed(inputs)

        shown = self.runtime.show_progress if progress is None else progress
        with model_lock(self.model):
            tokens = run_batches(
                batches,
                encode_batch,
                n_items=len(images),
                on_oom=lambda: empty_device_cache(self.device),
                progress=shown,
                desc="Page encoding",
            )
        return self.pool(tokens, pool_factor) if pool_factor > 1 else tokens

    def pool(self, token_sets: Sequence[np.ndarray], pool_factor: int) -> list[np.ndarray]:
        """Pool stored patch embeddings (PyLate's hierarchical pooling, nothing protected)."""
        from pylate.models import ColBERT

        pooled = ColBERT.pool_embeddings_hierarchical(
            None,  # type: ignore[arg-type]  # the method uses no model state
            [torch.from_numpy(np.asarray(t, dtype=np.float32)) for t in token_sets],
            pool_factor=pool_factor,
            protected_tokens=0,
        )
        return [p.numpy() for p in pooled]

    def encode_documents(self, texts: Sequence[str], **_: Any) -> list[np.ndarray]:
        """Refused: this model scores page images (:meth:`ColrankIndex.add_images`)."""
        raise InvalidImageError(
            f"{self.name!r} is a visual model: its documents are page images; add them with "
            "add_images / add_pdf (a text-only document cannot be scored by it)"
        )


__all__ = ["VisualEncoder", "is_visual_model", "load_visual", "visual_model_type"]
