"""Dense vectors and ColBERT tokens from transformer hidden states, one call per batch.

A sentence-transformers dense model is a transformer followed by heads (pooling,
normalisation); a PyLate ColBERT is a transformer followed by a projection. When both
are built on the *same* transformer (the offline default: MiniLM for both stages, or
any config naming one model twice), a text's dense input and its ColBERT input go
through that transformer in **one batched call**: each keeps its own tokenisation (the
ColBERT marker, query padding, lengths), rows are padded to a common width with masked
positions, and each head reads its own rows. When that padding would cost more than a
second call (a long dense query beside a ColBERT query cut at 32 tokens), the two
inputs are run as two calls of their own widths. Masked positions change nothing that is
kept, so the outputs equal the two separate encodes (within float rounding, checked to
1e-5 in the tests). Models with different transformers get one call each.

When the ColBERT reads a text exactly as the dense model does (:func:`reads_as_dense`:
the offline stand-in with ``stand_in_inputs="plain"``: no marker, no [MASK] expansion,
the same length), there is one input, not two: each text goes through the shared
transformer **once**, and both heads read the same hidden states.

The transformer itself runs in PyTorch (:class:`TorchBackbone`) or ONNX Runtime
(:class:`~colrank.models.ort.OrtBackbone`); the heads are always the models' own
PyTorch modules, so pooling, projection, PyLate's skiplist and query expansion are the
libraries' code, not a copy.

Example:
    >>> pad_to(torch.tensor([[1, 2]]), 4, 0).tolist()
    [[1, 2, 0, 0]]
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from colrank.config import RuntimeConfig
from colrank.models.device import (
    empty_device_cache,
    one_torch_thread,
    run_batches,
    token_budget_batches,
)

logger = logging.getLogger(__name__)


class Backbone(Protocol):
    """Maps tokenised features to ``(rows, length, hidden)`` hidden states."""

    def __call__(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Hidden states of the tokenised rows (padding positions masked)."""
        ...


class TorchBackbone:
    """The model's own transformer module, in PyTorch."""

    def __init__(self, transformer: Any) -> None:
        self.transformer = transformer
        self.device = next(transformer.parameters()).device

    def __call__(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Hidden states, on the model's device and in its dtype."""
        moved = {k: v.to(self.device) for k, v in features.items()}
        with torch.inference_mode():
            return self.transformer(moved)["token_embeddings"]


def pad_to(values: torch.Tensor, width: int, fill: int) -> torch.Tensor:
    """Right-pad a ``(rows, length)`` tensor to ``width`` columns with ``fill``."""
    extra = width - values.shape[1]
    if extra <= 0:
        return values
    return torch.nn.functional.pad(values, (0, extra), value=fill)


CALL_COST_POSITIONS = 32  # one more backbone call costs about as much as 32 more positions


def _padding_waste(features: list[dict[str, torch.Tensor]]) -> bool:
    """Whether padding the parts to one width costs more than the calls it saves.

    A forward costs a fixed amount per call plus an amount per position (rows x width).
    Measured with ONNX Runtime on 2 CPU cores, a one-row forward took ~2.2 ms plus ~0.1 ms
    per position, so a call is worth ~20-30 positions; over 50 SciFact queries one call
    padded to 32 was never slower than two calls of their own widths (p50 6.0-6.6 vs
    6.7-7.3 ms). Parts go in separate calls only when padding adds more positions than
    the saved calls are worth: a long dense query (hundreds of tokens) beside a ColBERT
    query cut at 32.
    """
    shapes = [f["input_ids"].shape for f in features]
    joint = sum(rows for rows, _ in shapes) * max(width for _, width in shapes)
    separate = sum(rows * width for rows, width in shapes)
    return joint > separate + CALL_COST_POSITIONS * (len(shapes) - 1)


def run_parts(backbone: Backbone, parts: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """Hidden states of tokenised parts: one call padded to one width, or one call each.

    One call each when that padding would cost more (:func:`_padding_waste`).
    """
    if len(parts) > 1 and _padding_waste(parts):
        return [backbone(f) for f in parts]
    width = max(f["input_ids"].shape[1] for f in parts)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in parts[0]]
    # padded positions are masked: their ids do not matter
    batch = {k: torch.cat([pad_to(f[k], width, 0) for f in parts]) for k in keys}
    hidden = backbone(batch)
    out, start = [], 0
    for f in parts:
        rows, length = f["input_ids"].shape
        out.append(hidden[start : start + rows, :length])
        start += rows
    return out


def same_backbone(dense_model: Any, colbert_model: Any) -> bool:
    """Whether two loaded models hold the same transformer (architecture and weights)."""
    a, b = dense_model[0], colbert_model[0]
    if type(a).__name__ != "Transformer" or type(b).__name__ != "Transformer":
        return False
    configs = [m.auto_model.config.to_dict() for m in (a, b)]
    for config in configs:  # where it was read from and which class saved it, not the model
        config.pop("_name_or_path", None)
        config.pop("architectures", None)
    if configs[0] != configs[1]:
        return False
    pa, pb = dict(a.auto_model.named_parameters()), dict(b.auto_model.named_parameters())
    if pa.keys() != pb.keys():
        return False
    return all(torch.equal(pa[name], pb[name]) for name in pa)


def reads_as_dense(dense_model: Any, colbert_model: Any) -> bool:
    """Whether the ColBERT's input of every text is the dense model's input of it.

    No query or document marker, no [MASK] query expansion, queries and documents cut at
    the dense model's length, the same vocabulary: tokenised once, a text feeds both.
    """
    length = getattr(dense_model, "max_seq_length", None)
    return (
        getattr(colbert_model, "query_prefix_id", 0) is None
        and getattr(colbert_model, "document_prefix_id", 0) is None
        and not getattr(colbert_model, "do_query_expansion", True)
        and colbert_model.query_length == colbert_model.document_length == length
        and colbert_model.tokenizer.get_vocab() == dense_model.tokenizer.get_vocab()
    )


class BackboneEncoder:
    """Dense vectors and ColBERT tokens computed from backbone hidden states.

    Args:
        dense_model: a loaded sentence-transformers model (tokenizer and heads are used).
        colbert_model: a loaded PyLate ColBERT (tokenizer, projection, skiplist).
        dense_backbone: runs the dense model's transformer.
        colbert_backbone: runs the ColBERT transformer; pass the same object as
            ``dense_backbone`` when both share it, and each batch is one call.
        runtime: batching settings (token budget, batch size, progress bars).
    """

    def __init__(
        self,
        dense_model: Any,
        colbert_model: Any,
        dense_backbone: Backbone,
        colbert_backbone: Backbone,
        runtime: RuntimeConfig,
    ) -> None:
        self.dense_model = dense_model
        self.colbert_model = colbert_model
        self.dense_backbone = dense_backbone
        self.colbert_backbone = colbert_backbone
        self.runtime = runtime
        self.shared = dense_backbone is colbert_backbone
        # one input per text, one forward, both heads (see the module docstring)
        self.one_forward = self.shared and reads_as_dense(dense_model, colbert_model)
        self.outside_torch = not isinstance(colbert_backbone, TorchBackbone)  # ONNX Runtime
        # heads beside ONNX Runtime stay off PyTorch's thread pool (see one_torch_thread)
        self._heads_context = one_torch_thread if self.outside_torch else contextlib.nullcontext

    # ------------------------------------------------------------------ one batch
    def _hidden(self, parts: list[tuple[Backbone, dict[str, torch.Tensor]]]) -> list[torch.Tensor]:
        """Hidden states of each tokenised part; parts with the same backbone share a call."""
        out: list[torch.Tensor | None] = [None] * len(parts)
        groups: dict[int, list[int]] = {}
        for i, (backbone, _) in enumerate(parts):
            groups.setdefault(id(backbone), []).append(i)
        for members in groups.values():
            backbone = parts[members[0]][0]
            feats = [parts[i][1] for i in members]
            for i, h in zip(members, run_parts(backbone, feats), strict=True):
                out[i] = h
        return [h for h in out if h is not None]

    def _dense_head(self, features: dict[str, torch.Tensor], hidden: torch.Tensor) -> np.ndarray:
        model = self.dense_model
        feats = dict(features)
        feats["token_embeddings"] = hidden.to(model.device, next(model.parameters()).dtype)
        feats["attention_mask"] = feats["attention_mask"].to(model.device)
        with torch.inference_mode():
            for module in list(model)[1:]:
                feats = module(feats)
            vectors = torch.nn.functional.normalize(feats["sentence_embedding"].float(), dim=-1)
        return vectors.cpu().numpy()

    def _colbert_head(
        self, features: dict[str, torch.Tensor], hidden: torch.Tensor, is_query: bool
    ) -> list[np.ndarray]:
        model = self.colbert_model
        feats = {k: v.to(model.device) for k, v in features.items()}
        feats["token_embeddings"] = hidden.to(model.device, next(model.parameters()).dtype)
        with torch.inference_mode():
            for module in list(model)[1:]:
                feats = module(feats)
            if is_query and model.do_query_expansion:  # PyLate keeps every query position
                masks = torch.ones_like(feats["input_ids"], dtype=torch.bool)
            elif is_query:
                masks = feats["attention_mask"].bool()
            else:  # documents drop padding and skiplist tokens (punctuation)
                keep = model.skiplist_mask(input_ids=feats["input_ids"], skiplist=model.skiplist)
                masks = torch.logical_and(keep, feats["attention_mask"])
            return [
                torch.nn.functional.normalize(emb[mask].float(), p=2, dim=1).cpu().numpy()
                for emb, mask in zip(feats["token_embeddings"], masks, strict=True)
            ]

    def encode_batch(
        self, texts: list[str], *, dense: bool, colbert: bool, is_query: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Dense vectors and/or ColBERT tokens of ``texts``, in one backbone call if shared."""
        if self.one_forward:
            return self._one_forward_batch(texts, dense=dense, colbert=colbert, is_query=is_query)
        parts: list[tuple[Backbone, dict[str, torch.Tensor]]] = []
        if dense:
            parts.append((self.dense_backbone, self.dense_model.tokenize(texts)))
        if colbert:
            tokenized = self.colbert_model.tokenize(texts, is_query=is_query)
            parts.append((self.colbert_backbone, tokenized))
        hidden = self._hidden(parts)
        with self._heads_context():
            vectors = self._dense_head(parts[0][1], hidden[0]) if dense else None
            tokens = self._colbert_head(parts[-1][1], hidden[-1], is_query) if colbert else []
        return vectors, tokens

    def _one_forward_batch(
        self, texts: list[str], *, dense: bool, colbert: bool, is_query: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Both outputs from one input per text: the dense model's tokens, one forward."""
        features = self.dense_model.tokenize(texts)
        hidden = self.dense_backbone(features)
        with self._heads_context():
            vectors = self._dense_head(features, hidden) if dense else None
            tokens = self._colbert_head(features, hidden, is_query) if colbert else []
        return vectors, tokens

    # ------------------------------------------------------------------ many texts
    def encode_documents(
        self,
        texts: Sequence[str],
        lengths: Sequence[int],
        *,
        progress: bool | None = None,
        dense: bool = True,
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Dense vectors (unless ``dense`` is false) and ColBERT tokens of documents.

        Batched by padded token count; ``lengths`` are each text's padded token count
        (the longer of its two inputs).
        """
        # a shared call holds two rows per text, unless one input feeds both heads
        rows = 2 if self.shared and dense and not self.one_forward else 1
        batches = token_budget_batches(
            lengths, max(1, self.runtime.token_budget // rows), self.runtime.max_batch_size
        )
        show = self.runtime.show_progress if progress is None else progress

        def run(idx: list[int]) -> list[tuple[np.ndarray | None, np.ndarray]]:
            vectors, tokens = self.encode_batch(
                [texts[i] for i in idx], dense=dense, colbert=True, is_query=False
            )
            return list(zip(vectors if dense else [None] * len(idx), tokens, strict=True))

        pairs = run_batches(
            batches,
            run,
            n_items=len(texts),
            on_oom=lambda: empty_device_cache(str(self.colbert_model.device)),
            progress=show and len(texts) > 1,
            desc="Encoding",
        )
        tokens = [p[1] for p in pairs]
        if not dense:
            return None, tokens
        return np.stack([p[0] for p in pairs]).astype(np.float32), tokens


__all__ = [
    "Backbone",
    "BackboneEncoder",
    "TorchBackbone",
    "pad_to",
    "reads_as_dense",
    "run_parts",
    "same_backbone",
]
