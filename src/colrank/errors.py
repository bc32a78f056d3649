"""One exception hierarchy for colrank.

Every error colrank raises on purpose derives from :class:`ColrankError`, and most
also derive from the built-in type a Python user would expect (``ValueError``,
``KeyError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.

Example:
    >>> from colrank.errors import ColrankError, EmptyQueryError
    >>> issubclass(EmptyQueryError, ValueError) and issubclass(EmptyQueryError, ColrankError)
    True
"""

from __future__ import annotations


class ColrankError(Exception):
    """Base class of every error raised by colrank."""


class InvalidInputError(ColrankError, ValueError):
    """An argument has the wrong type or value (texts that are not strings, k <= 0, ...)."""


class UnsupportedStageError(InvalidInputError):
    """A search stage this backend cannot run (e.g. ``first_stage="muvera"`` on PostgreSQL)."""


class EmptyQueryError(InvalidInputError):
    """The query is empty or only whitespace."""


class EmptyCorpusError(InvalidInputError):
    """No documents were given where at least one is needed."""


class DuplicateIdError(InvalidInputError):
    """An id occurs twice in one call, or is already in the index."""


class UnknownIdError(ColrankError, KeyError):
    """An id is not in the index (for example in ``delete``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidFilterError(InvalidInputError):
    """A metadata filter is malformed (unknown operator, wrong value type)."""


class ModelLoadError(ColrankError, RuntimeError):
    """A model could not be loaded (no network, wrong path, not a ColBERT checkpoint)."""


class DimensionMismatchError(ColrankError, ValueError):
    """Embeddings of one dimension met an index built for another (a different model)."""


class ModelMismatchError(ColrankError, ValueError):
    """An index is opened with other models than the ones its embeddings were made with."""


class UntrustedModelError(ColrankError, PermissionError):
    """An index names a local model folder, and the caller did not say to trust it."""


class StoreUnavailableError(ColrankError, ConnectionError):
    """A database backend cannot be reached (wrong URL, server down, no permission)."""


class IndexNotFoundError(ColrankError, FileNotFoundError):
    """No saved colrank index at the given path."""


class CorruptIndexError(ColrankError, RuntimeError):
    """A saved index is truncated, corrupted or written by an incompatible version."""


class InvalidImageError(InvalidInputError):
    """An image or PDF that cannot be read, or an image where the index takes none."""


class OutOfMemoryError(ColrankError, RuntimeError):
    """An accelerator ran out of memory even for a batch of one item."""


__all__ = [
    "ColrankError",
    "CorruptIndexError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmptyCorpusError",
    "EmptyQueryError",
    "IndexNotFoundError",
    "InvalidFilterError",
    "InvalidImageError",
    "InvalidInputError",
    "ModelLoadError",
    "ModelMismatchError",
    "StoreUnavailableError",
    "OutOfMemoryError",
    "UnknownIdError",
    "UnsupportedStageError",
    "UntrustedModelError",
]
