"""Step 2 of a search: ColBERT MaxSim over the candidates' *stored* token codes.

Codes are fetched by id from the read view, decoded block by block inside
:func:`~colrank.rerank.maxsim.maxsim_flat` and scored against the query tokens; no
document is encoded at query time.

Example:
    >>> import numpy as np, torch
    >>> best = np.array([[0.5, 1.0], [0.25, 0.25]])
    >>> ColbertScores.from_best(best).total.tolist(), ColbertScores.from_best(best).mean.tolist()
    ([1.5, 0.5], [0.75, 0.25])
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from colrank.models.device import one_torch_thread
from colrank.rerank.maxsim import maxsim_flat
from colrank.store.base import ReadView
from colrank.timing import Timings, timed


@dataclass(frozen=True)
class ColbertScores:
    """MaxSim per candidate: ``total`` (the sum over query tokens) and ``mean`` (per token).

    ``mean`` is the fixed-scale ColBERT score the calibrated fusion uses.
    """

    total: np.ndarray
    mean: np.ndarray

    @classmethod
    def from_best(cls, best: np.ndarray) -> ColbertScores:
        """From ``(N, Lq)`` per-query-token maxima."""
        best = np.asarray(best, dtype=np.float64)
        return cls(best.sum(axis=1), best.mean(axis=1))

    @classmethod
    def empty(cls) -> ColbertScores:
        """No candidates."""
        return cls(np.zeros(0), np.zeros(0))


def score_stored(
    view: ReadView,
    query_tokens: np.ndarray,
    iids: np.ndarray,
    timings: Timings | None = None,
    compute_dtype: torch.dtype = torch.float32,
    one_thread_rows: int = 0,
) -> ColbertScores:
    """MaxSim of one query's tokens against the stored tokens of ``iids``.

    Candidates holding at most ``one_thread_rows`` token rows are scored on one PyTorch
    thread (:func:`~colrank.models.device.one_torch_thread`): beside an ONNX Runtime
    encoder, PyTorch's workers left spinning after MaxSim slow the next query's encoding.
    """
    if len(iids) == 0:
        return ColbertScores.empty()
    with timed(timings, "token_fetch"):
        codes, lengths = view.token_codes(iids.tolist())
    quiet = len(codes) <= one_thread_rows
    with timed(timings, "maxsim"), one_torch_thread() if quiet else contextlib.nullcontext():
        best = maxsim_flat(
            torch.from_numpy(query_tokens),
            codes,
            lengths,
            decode=lambda rows: view.decode(rows, compute_dtype),
            per_token=True,
            compute_dtype=compute_dtype,
        )
    return ColbertScores.from_best(best)


def score_embeddings(
    query_tokens: np.ndarray,
    token_sets: list[np.ndarray],
    compute_dtype: torch.dtype = torch.float32,
) -> ColbertScores:
    """MaxSim against token embeddings in hand (documents from outside the index)."""
    if not token_sets:
        return ColbertScores.empty()
    lengths = np.fromiter((len(t) for t in token_sets), dtype=np.int64, count=len(token_sets))
    best = maxsim_flat(
        torch.from_numpy(query_tokens),
        np.concatenate(token_sets),
        lengths,
        per_token=True,
        compute_dtype=compute_dtype,
    )
    return ColbertScores.from_best(best)


__all__ = ["ColbertScores", "score_embeddings", "score_stored"]
