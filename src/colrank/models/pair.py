"""The two encoders a collection uses, loaded on first use, behind one object.

Indexing and queries ask for both kinds of embedding at once (dense vector and ColBERT
tokens), so they ask this object, not the two encoders. How the work is done is a
property of the models and the runtime, decided here and nowhere else:

- both models on the **same transformer** (the offline default) -> one backbone call
  per batch gives both (:class:`~colrank.models.backbone.BackboneEncoder`); when the
  stand-in ColBERT reads text as the dense model does (``stand_in_inputs="plain"``, the
  default for new indexes), one forward per text gives both;
- ``runtime.engine`` ``onnx`` / ``onnx-int8`` (or ``auto`` on a CPU without native
  bfloat16, with ``colrank[onnx]`` installed) -> the transformers run in ONNX Runtime
  (:mod:`colrank.models.ort`); ``auto`` on a CPU that multiplies bfloat16 natively runs
  them in PyTorch in bfloat16 (:func:`encoding_runtime`);
- otherwise the libraries' own ``encode`` (sentence-transformers, PyLate), one each.

A model ONNX Runtime cannot run (an export that cannot be traced, on any engine; or, under
``auto``, any failure such as an unwritable cache) is encoded in PyTorch, with one warning.

Example:
    >>> from colrank.config import ColrankConfig
    >>> pair = EncoderPair(ColrankConfig.offline())          # nothing is loaded yet
    >>> pair.names
    ('offline:minilm', 'offline:minilm')
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from colrank.config import ColrankConfig, RuntimeConfig
from colrank.errors import InvalidImageError, InvalidInputError, ModelLoadError
from colrank.models.backbone import Backbone, BackboneEncoder, TorchBackbone, same_backbone
from colrank.models.device import (
    DeviceFacts,
    native_bf16,
    resolve_device,
    resolve_maxsim_dtype,
)
from colrank.models.encoders import ColbertEncoder, DenseEncoder, model_lock
from colrank.models.visual import VisualEncoder, is_visual_model
from colrank.timing import Timings, timed

logger = logging.getLogger(__name__)


def resolve_engine(
    engine: str, device: str, dtype: str = "auto", facts: DeviceFacts | None = None
) -> str:
    """``torch``, ``onnx`` or ``onnx-int8`` for a configured engine on a resolved device.

    ``auto``: PyTorch off the CPU; on a CPU that multiplies bfloat16 natively (and no
    other dtype asked for), PyTorch in bfloat16; else ONNX Runtime fp32 when installed,
    else PyTorch. Measured on an AVX512-BF16 CPU (docs/benchmarks.md): PyTorch bfloat16
    indexes SciFact 1.6x faster than ONNX Runtime fp32 (1.9x on the encode alone), nDCG@10
    within 0.15 points of fp32 on both shared corpora; a one-query encode ~1 ms slower.
    """
    from colrank.models.ort import onnx_runtime_available

    if engine == "auto":
        if device != "cpu":
            return "torch"
        if dtype in ("auto", "bfloat16") and native_bf16(facts):
            return "torch"
        return "onnx" if onnx_runtime_available() else "torch"
    if engine.startswith("onnx") and not onnx_runtime_available():
        raise InvalidInputError(
            f"engine={engine!r} needs ONNX Runtime: pip install 'colrank[onnx]' "
            "(or use engine='torch')"
        )
    return engine


def encoding_runtime(runtime: RuntimeConfig, facts: DeviceFacts | None = None) -> RuntimeConfig:
    """``runtime`` with its ``auto`` engine made concrete for this machine.

    Where ``auto`` picks PyTorch on a CPU with native bfloat16, an ``auto`` dtype becomes
    ``bfloat16`` (elsewhere ``auto`` dtypes keep their meaning: fp32 on CPU).

    Example:
        >>> facts = DeviceFacts(cpu_bf16=True)
        >>> chosen = encoding_runtime(RuntimeConfig(device="cpu"), facts)
        >>> chosen.engine, chosen.dtype
        ('torch', 'bfloat16')
        >>> encoding_runtime(RuntimeConfig(device="cpu", engine="torch"), facts).dtype
        'auto'
    """
    device = resolve_device(runtime.device, facts)
    engine = resolve_engine(runtime.engine, device, runtime.dtype, facts)
    update: dict[str, str] = {"engine": engine}
    auto_bf16 = runtime.engine == "auto" and runtime.dtype == "auto" and device == "cpu"
    if auto_bf16 and engine == "torch" and native_bf16(facts):
        update["dtype"] = "bfloat16"
    return runtime.model_copy(update=update)


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
        self._backbones: BackboneEncoder | bool | None = False  # False: not decided yet
        self._runtime: RuntimeConfig | None = None

    @property
    def runtime(self) -> RuntimeConfig:
        """The config's runtime with ``auto`` engine and dtype made concrete (see above)."""
        if self._runtime is None:
            self._runtime = encoding_runtime(self.config.runtime)
        return self._runtime

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
                    models = self.config.models
                    self._dense = DenseEncoder.load(
                        models.dense_model,
                        self.runtime,
                        trust_remote_code=models.trust_remote_code,
                    )
        return self._dense

    @property
    def colbert(self) -> ColbertEncoder:
        """The ColBERT (rerank) encoder."""
        if self._colbert is None:
            with self._loading:
                if self._colbert is None:
                    models = self.config.models
                    if is_visual_model(models.colbert_model):
                        self._colbert = VisualEncoder.load(  # type: ignore[assignment]
                            models.colbert_model, self.runtime
                        )
                        return self._colbert  # type: ignore[return-value]
                    self._colbert = ColbertEncoder.for_models(models, self.runtime)
        return self._colbert

    @property
    def is_visual(self) -> bool:
        """Whether the late-interaction model scores page images (a ColPali-family model)."""
        if self._colbert is not None:
            return bool(getattr(self._colbert, "is_visual", False))
        return is_visual_model(self.config.models.colbert_model)

    @property
    def engine(self) -> str:
        """What runs the transformers: ``torch``, ``onnx`` or ``onnx-int8``."""
        return self.runtime.engine

    @property
    def encodes_with_onnx_runtime(self) -> bool:
        """Whether encoding ran in ONNX Runtime (False until the models are loaded)."""
        joint = self._backbones
        return isinstance(joint, BackboneEncoder) and joint.outside_torch

    @property
    def maxsim_dtype(self) -> torch.dtype:
        """What MaxSim multiplies this pair's tokens in (``runtime.maxsim_precision``)."""
        return resolve_maxsim_dtype(self.config.runtime.maxsim_precision)

    @property
    def backbones(self) -> BackboneEncoder | None:
        """The backbone encoder, or None when each library encodes on its own."""
        if self._backbones is False:
            dense, colbert = self.dense, self.colbert  # loaded outside the lock
            with self._loading:
                if self._backbones is False:
                    self._backbones = self._build_backbones(dense, colbert)
        return self._backbones  # type: ignore[return-value]

    def _build_backbones(
        self, dense: DenseEncoder, colbert: ColbertEncoder
    ) -> BackboneEncoder | None:
        if not isinstance(dense, DenseEncoder) or not isinstance(colbert, ColbertEncoder):
            return None  # e.g. a LangChain Embeddings as the dense encoder: it encodes itself
        engine = self.engine
        shared = same_backbone(dense.model, colbert.model)
        if engine == "torch" and not shared:
            return None
        try:
            return self._backbone_encoder(dense, colbert, engine, shared)
        except Exception as exc:
            chosen = self.config.runtime.engine == "auto"
            if engine == "torch" or not (chosen or isinstance(exc, ModelLoadError)):
                raise  # e.g. no writable cache for an engine asked for by name: the user's
            # 'auto' chose ONNX Runtime and it cannot run here, or the model cannot be
            # exported (code the exporter cannot trace): PyTorch gives the same embeddings
            logger.warning(
                "engine %r cannot run these models (%s); encoding with PyTorch instead",
                engine,
                exc,
            )
            return self._backbone_encoder(dense, colbert, "torch", shared) if shared else None

    def _backbone_encoder(
        self, dense: DenseEncoder, colbert: ColbertEncoder, engine: str, shared: bool
    ) -> BackboneEncoder:
        def backbone(model: object) -> Backbone:
            transformer = model[0]  # type: ignore[index]
            if engine == "torch":
                return TorchBackbone(transformer)
            from colrank.models.ort import OrtBackbone

            folder = transformer.auto_model.name_or_path
            precision = "int8" if engine == "onnx-int8" else "fp32"
            return OrtBackbone(transformer, folder, precision, colbert.device)

        colbert_backbone = backbone(colbert.model)
        dense_backbone = colbert_backbone if shared else backbone(dense.model)
        logger.info("encoding with %s, %s backbone", engine, "one shared" if shared else "two")
        return BackboneEncoder(
            dense.model, colbert.model, dense_backbone, colbert_backbone, self.runtime
        )

    def swap_colbert(self, encoder: ColbertEncoder) -> None:
        """Use another ColBERT encoder from now on (after re-encoding the stored tokens)."""
        with self._loading:
            self._colbert = encoder
            self._backbones = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # fast tokenizers refuse concurrent use; one model's lock is taken first, always
        first, second = model_lock(self.dense.model), model_lock(self.colbert.model)
        with first, second if second is not first else contextlib.nullcontext():
            yield

    def encode_documents(
        self, texts: Sequence[str], *, pool_factor: int = 1, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Dense vectors ``(n, dense_dim)`` and token embeddings of documents."""
        joint = self.backbones
        if joint is None:
            vectors = self.dense.encode(texts, progress=progress)
            tokens = self.colbert.encode_documents(
                texts, progress=progress, pool_factor=pool_factor
            )
            return vectors, tokens
        if not texts:
            return np.zeros((0, self.dense.dim), np.float32), []
        vectors, tokens = self._joint_documents(joint, texts, progress, dense=True)
        assert vectors is not None
        if pool_factor > 1:
            tokens = self.colbert.pool(tokens, pool_factor)
        return vectors, tokens

    def encode_document_tokens(
        self, texts: Sequence[str], *, progress: bool | None = None
    ) -> list[np.ndarray]:
        """ColBERT token embeddings of documents alone (no dense vectors)."""
        joint = self.backbones
        if joint is None:
            return self.colbert.encode_documents(texts, progress=progress)
        if not texts:
            return []
        return self._joint_documents(joint, texts, progress, dense=False)[1]

    def _joint_documents(
        self, joint: BackboneEncoder, texts: Sequence[str], progress: bool | None, dense: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        with self._locked():
            lengths = self.colbert.document_lengths(texts)
            return joint.encode_documents(texts, lengths, progress=progress, dense=dense)

    def encode_pages(
        self,
        texts: Sequence[str],
        images: Sequence[object],
        *,
        pool_factor: int = 1,
        progress: bool | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Dense vectors of the pages' texts and patch embeddings of their images.

        A page without text gets a zero dense vector: no text evidence, so it scores 0
        against every query in dense recall (it is found by ``first_stage="visual"``).
        """
        visual = self.colbert
        if not isinstance(visual, VisualEncoder):
            raise InvalidImageError(
                f"this index reranks with the text model {self.names[1]!r}: it cannot store "
                "page images (open an index whose colbert_model is a ColPali-family model)"
            )
        with_text = [i for i, text in enumerate(texts) if text.strip()]
        vectors = np.zeros((len(texts), self.dense.dim), np.float32)
        if with_text:
            found = self.dense.encode([texts[i] for i in with_text], progress=progress)
            vectors[with_text] = found
        tokens = visual.encode_images(images, progress=progress, pool_factor=pool_factor)
        return vectors, tokens

    def encode_queries(
        self,
        queries: Sequence[str],
        *,
        dense: bool = True,
        colbert: bool = True,
        timings: Timings | None = None,
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Dense query vectors (None when ``dense`` is false) and query token embeddings.

        ``timings`` gets ``encode`` for one joint call, or ``dense_encode`` and
        ``colbert_encode`` when the libraries encode separately. Without ``dense``, a
        dense model not loaded yet stays unloaded (the ColBERT encodes on its own).
        """
        joint = self.backbones if dense or self._backbones is not False else None
        if joint is None:
            vectors, tokens = None, []
            if dense:
                with timed(timings, "dense_encode"):
                    vectors = self.dense.encode(queries, progress=False)
            if colbert:
                with timed(timings, "colbert_encode"):
                    tokens = self.colbert.encode_queries(queries)
            return vectors, tokens
        rows = 1 if joint.one_forward else 2  # rows per query in a call
        step = max(1, self.config.runtime.max_batch_size // rows)
        parts = []
        with timed(timings, "encode"), self._locked():
            for start in range(0, len(queries), step):
                chunk = list(queries[start : start + step])
                parts.append(joint.encode_batch(chunk, dense=dense, colbert=colbert, is_query=True))
        vectors = np.concatenate([p[0] for p in parts]) if dense and parts else None
        return vectors, [t for p in parts for t in p[1]]


__all__ = ["EncoderPair", "encoding_runtime", "resolve_engine"]
