"""The ColBERT stage: MaxSim over the candidates' *stored* token codes (or tokens in hand).

Codes are fetched by id from the read view, decoded block by block inside
:func:`~colrank.rerank.maxsim.maxsim_flat` and scored against the query tokens; no
stored document is encoded at query time. Documents from outside the index are scored
from their encoded tokens (:func:`score_embeddings`); :func:`score_mixed` does both
for one candidate list.

Example:
    >>> import numpy as np
    >>> query = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> doc = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> score_embeddings(query, [doc]).total.round(3).tolist()
    [1.8]
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from colrank.models.device import one_torch_thread
from colrank.rerank.maxsim import maxsim_flat
from colrank.scoring.records import ColbertScores
from colrank.store.base import ReadView
from colrank.timing import Timings, timed


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


def score_mixed(
    view: ReadView | None,
    query_tokens: np.ndarray,
    stored: np.ndarray,
    outside: dict[int, np.ndarray],
    compute_dtype: torch.dtype = torch.float32,
    one_thread_rows: int = 0,
) -> ColbertScores:
    """MaxSim of candidates some of which are stored and some in hand.

    ``stored[j]`` is candidate ``j``'s internal id (``-1``: not stored); ``outside[j]``
    its token embeddings when it is not stored. A stored candidate scores exactly as in
    a search (:func:`score_stored`).
    """
    total, mean = np.full(len(stored), np.nan), np.full(len(stored), np.nan)
    rows = np.flatnonzero(stored >= 0)
    if len(rows):
        assert view is not None  # stored ids come from a view
        found = score_stored(view, query_tokens, stored[rows], None, compute_dtype, one_thread_rows)
        total[rows], mean[rows] = found.total, found.mean
    others = sorted(outside)
    if others:
        found = score_embeddings(query_tokens, [outside[j] for j in others], compute_dtype)
        total[others], mean[others] = found.total, found.mean
    return ColbertScores(total, mean)


__all__ = ["score_embeddings", "score_mixed", "score_stored"]
