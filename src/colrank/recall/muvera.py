"""The ColBERT-only first stage: MUVERA encodings of the stored tokens, searched by FAISS.

``first_stage="muvera"`` recalls with the query's ColBERT tokens alone: no dense model
is loaded and the query goes through one transformer forward. The backend keeps one
fixed dimensional encoding per document (:mod:`colrank.store.fde`, built from the
stored tokens on the first such search); the query's encoding is searched by inner
product, which approximates MaxSim, and the candidates are then scored by exact MaxSim
over their stored tokens as in any search. The first-stage score is the encodings'
inner product per query token (the scale of ``ColbertScores.mean``); ``rerank`` gives
the caller's documents the same first-stage score (:func:`muvera_given`).

Example:
    >>> import numpy as np
    >>> from colrank.config import MuveraConfig
    >>> from colrank.store.local.backend import LocalBackend
    >>> with LocalBackend().read() as view:       # an empty collection recalls nothing
    ...     len(muvera_recall(view, [np.ones((2, 4), "float32")], 5, None, MuveraConfig())[0].iids)
    0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from colrank.config import MuveraConfig
from colrank.errors import UnsupportedStageError
from colrank.scoring.records import Recall
from colrank.store.base import ReadView
from colrank.store.filters import Filter
from colrank.timing import Timings, timed


@runtime_checkable
class FdeSearchable(Protocol):
    """A read view that can search MUVERA encodings of its stored tokens."""

    def fde_search(
        self,
        query_tokens: Sequence[np.ndarray],
        n: int,
        filter: Filter | None,  # noqa: A002
        config: MuveraConfig,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` encoding inner products per query: ``(scores, iids)``, -1 ids pad."""
        ...

    def fde_scores(
        self,
        query_tokens: np.ndarray,
        iids: Sequence[int],
        others: Sequence[np.ndarray],
        config: MuveraConfig,
    ) -> np.ndarray:
        """One query's inner products with stored documents, then outside token sets."""
        ...


def muvera_recall(
    view: ReadView,
    query_tokens: Sequence[np.ndarray],
    n: int,
    filter: Filter | None,  # noqa: A002
    config: MuveraConfig,
    timings: Timings | None = None,
) -> list[Recall]:
    """Each query's ``n`` best documents by MUVERA encoding inner product."""
    searchable = _checked(view)
    with timed(timings, "muvera"):
        scores, iids = searchable.fde_search(query_tokens, n, filter, config)
    out = []
    for row, found, tokens in zip(scores, iids, query_tokens, strict=True):
        keep = found >= 0
        first = row[keep].astype(np.float64) / max(len(tokens), 1)
        nothing = np.full(len(first), np.nan)
        out.append(Recall(found[keep].astype(np.int64), first, nothing, nothing))
    return out


def muvera_given(
    view: ReadView,
    query_tokens: np.ndarray,
    stored: np.ndarray,
    outside: dict[int, np.ndarray],
    config: MuveraConfig,
) -> np.ndarray:
    """The first-stage score a MUVERA search gives each of the caller's documents.

    Args:
        view: the collection.
        query_tokens: the query's ColBERT tokens.
        stored: each document's internal id, -1 when the index does not hold it.
        outside: the token embeddings of the documents not held, by position.
        config: the encodings' settings.
    """
    rows = np.flatnonzero(stored >= 0)
    others = sorted(outside)
    if not len(rows) and not others:
        return np.full(len(stored), np.nan)
    scores = _checked(view).fde_scores(
        query_tokens, stored[rows].tolist(), [outside[j] for j in others], config
    )
    out = np.full(len(stored), np.nan)
    out[rows], out[others] = scores[: len(rows)], scores[len(rows) :]
    return out / max(len(query_tokens), 1)


def _checked(view: ReadView) -> FdeSearchable:
    if not isinstance(view, FdeSearchable):
        raise UnsupportedStageError(
            f"first_stage='muvera' runs on the local backend only; {type(view).__name__} "
            "cannot search MUVERA encodings yet (use 'dense', 'bm25' or 'hybrid')"
        )
    return view


__all__ = ["FdeSearchable", "muvera_given", "muvera_recall"]
