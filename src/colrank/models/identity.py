"""Is an index opened with the models its stored embeddings were made with?

A saved index records the names of its dense and ColBERT models and their
dimensions. Opening it with other models would score query embeddings of one model
against document embeddings of another: wrong results, no error. So a different
model name is refused with :class:`~colrank.errors.ModelMismatchError` (switch the
reranker with ``ColrankIndex.reencode_tokens``), and a different dimension with
:class:`~colrank.errors.DimensionMismatchError`.

Example:
    >>> same_model("offline:minilm", "offline:minilm"), same_model("a/b", "c/d")
    (True, False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colrank.config import OFFLINE_MODEL, ColrankConfig
from colrank.errors import DimensionMismatchError, ModelMismatchError, UntrustedModelError
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.models.loading import is_stand_in_model


def same_model(saved: str | None, wanted: str) -> bool:
    """Whether two model names denote one model (local paths are compared resolved)."""
    if saved is None or saved == wanted:
        return True
    try:
        a, b = Path(saved), Path(wanted)
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    except (OSError, ValueError):
        return False


def is_local_model(name: str) -> bool:
    """Whether a model name is loaded from a folder here (not the offline alias or a hub id)."""
    if name == OFFLINE_MODEL:
        return False
    if name.startswith(("/", ".", "~")) or "\\" in name:
        return True
    try:
        return Path(name).expanduser().exists()
    except (OSError, ValueError):
        return True


def named_models(config: ColrankConfig) -> dict[str, str]:
    """Every model a config would make colrank load, by stage: each ``*_model`` setting.

    The dense and ColBERT models, the cross-encoder, and any later stage's model setting
    (a field named ``<stage>_model`` in any section), so the trust gate needs no list.

    Example:
        >>> sorted(named_models(ColrankConfig.offline()))
        ['colbert', 'dense']
    """
    found: dict[str, str] = {}
    for section_name in type(config).model_fields:
        section = getattr(config, section_name)
        for field in getattr(type(section), "model_fields", {}):
            value = getattr(section, field)
            if field.endswith("_model") and isinstance(value, str) and value:
                found[field.removesuffix("_model")] = value
    return found


def check_trusted_models(
    names: dict[str, str], trust_models: bool, *, remote_code: bool = False
) -> None:
    """Refuse to load local model folders that only stored data names.

    ``names`` maps a stage (``"dense"``, ``"colbert"``, ``"cross_encoder"``: see
    :func:`named_models`) to the model a stored index would make colrank load. Loading a
    model folder can import code it ships (custom modules) and reads files wherever it
    points, so a folder or database from elsewhere must not choose one: the caller names
    the models (a ``config`` or encoders) or passes ``trust_models``. Hub ids (loaded
    without remote code) and the offline alias need neither, unless ``remote_code``: the
    stored config turns on ``trust_remote_code``, which would run the code any named
    model ships, hub ids included.
    """
    if trust_models:
        return
    for kind, name in names.items():
        if remote_code:
            raise UntrustedModelError(
                f"this index's config runs the code its {kind} model ({name!r}) ships "
                "(trust_remote_code); colrank runs model code that an index names only "
                "when told to: pass trust_models=True (CLI: --trust-models) if you made "
                "this index, or a config / encoder naming the model yourself"
            )
        if is_local_model(name):
            raise UntrustedModelError(
                f"this index names a local {kind} model folder ({name!r}); colrank loads a "
                "model folder that an index names only when told to: pass "
                "trust_models=True (CLI: --trust-models) if you made this index, or a "
                "config / encoder naming the model yourself"
            )


def check_loaded_models(
    manifest: dict[str, Any],
    config: ColrankConfig,
    dense: DenseEncoder | None,
    colbert: ColbertEncoder | None,
) -> None:
    """Raise when ``config`` or the given encoders differ from what the index was built with.

    ``manifest`` names the models (``dense_model``, ``colbert_model``) and may say how a
    stand-in ColBERT read the stored texts (``stand_in_inputs``; ``config``'s otherwise).
    """
    for kind, encoder, configured in (
        ("dense", dense, config.models.dense_model),
        ("colbert", colbert, config.models.colbert_model),
    ):
        saved = manifest.get(f"{kind}_model")
        wanted = encoder.name if encoder is not None else configured
        if not same_model(saved, wanted):
            raise ModelMismatchError(
                f"this index was built with the {kind} model {saved!r}, not {wanted!r}; open "
                f"it with that model (or no config: the saved one is used), or switch the "
                "reranker with ColrankIndex.reencode_tokens()"
            )
        expected = manifest.get(f"{kind}_dim")
        if encoder is not None and expected is not None and encoder.dim != int(expected):
            raise DimensionMismatchError(
                f"this index was built with a {kind} model of dimension {expected}, but the "
                f"given {kind} encoder gives {encoder.dim}; load it with the model it was "
                "built with (see its manifest.json) or rebuild the index."
            )
    check_stand_in_inputs(manifest.get("stand_in_inputs"), config, colbert)


def check_stand_in_inputs(
    saved: str | None, config: ColrankConfig, colbert: ColbertEncoder | None
) -> None:
    """Raise when a stand-in ColBERT would read queries unlike the stored texts were read.

    ``saved`` is how the stored tokens were made (None: as ``config`` says). A checkpoint
    reads its own way: the setting only concerns stand-ins.
    """
    name = colbert.name if colbert is not None else config.models.colbert_model
    wanted = config.models.stand_in_inputs
    given = getattr(colbert, "stand_in_inputs", None)
    for other, what in (
        (saved, "the stored tokens were made with"),
        (given, "the given ColBERT encoder reads text with"),
    ):
        if other is not None and other != wanted and is_stand_in_model(name):
            raise ModelMismatchError(
                f"{what} stand_in_inputs={other!r}, but this index's stand-in "
                f"ColBERT {name!r} reads text {wanted!r}; queries must be read the way the "
                "documents were: use the index's own config (ModelConfig.stand_in_inputs) "
                f"or load the encoder with stand_in_inputs={wanted!r}"
            )


def with_stand_in_inputs_of(config: ColrankConfig, colbert: ColbertEncoder | None) -> ColrankConfig:
    """``config`` recording how a given stand-in ColBERT encoder reads text (it is saved)."""
    given = getattr(colbert, "stand_in_inputs", None)
    if given is None or given == config.models.stand_in_inputs:
        return config
    models = config.models.model_copy(update={"stand_in_inputs": given})
    return config.model_copy(update={"models": models})


__all__ = [
    "check_loaded_models",
    "check_stand_in_inputs",
    "check_trusted_models",
    "is_local_model",
    "named_models",
    "same_model",
    "with_stand_in_inputs_of",
]
