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

from colrank.config import ColrankConfig
from colrank.errors import DimensionMismatchError, ModelMismatchError
from colrank.models.encoders import ColbertEncoder, DenseEncoder


def same_model(saved: str | None, wanted: str) -> bool:
    """Whether two model names denote one model (local paths are compared resolved)."""
    if saved is None or saved == wanted:
        return True
    try:
        a, b = Path(saved), Path(wanted)
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    except (OSError, ValueError):
        return False


def check_loaded_models(
    manifest: dict[str, Any],
    config: ColrankConfig,
    dense: DenseEncoder | None,
    colbert: ColbertEncoder | None,
) -> None:
    """Raise when ``config`` or the given encoders differ from what the index was built with."""
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


__all__ = ["check_loaded_models", "same_model"]
