"""Small typed objects that go in and out of the engine.

Example:
    >>> hit = Hit(id="d1", text="hello", metadata={}, score=12.5, dense_score=0.7, rank=1)
    >>> hit.score > 0 and hit.rank == 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Document:
    """A document given to :meth:`ColrankIndex.rerank`, or read back with ``get``."""

    text: str
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One ranked result.

    Attributes:
        id: the document's id (None for id-less texts given to ``rerank``).
        text: the document text.
        metadata: the document metadata (a fresh dict; safe to change).
        score: the ColBERT MaxSim score (the ranking score; for dense-only search,
            the dense score).
        dense_score: inner product of the dense vectors (None when the document did
            not come through the dense index, as in ``rerank``).
        rank: 1-based position in this result list.
        position: for ``rerank``, the document's position in the input list.
    """

    id: str | None
    text: str
    metadata: dict[str, Any]
    score: float
    dense_score: float | None
    rank: int
    position: int | None = None


@dataclass(frozen=True)
class CandidateScores:
    """One query's dense candidates, in dense order, with both stages' scores."""

    ids: list[str]
    dense_scores: np.ndarray
    colbert_scores: np.ndarray


__all__ = ["CandidateScores", "Document", "Hit"]
