"""The visual first stage: MaxSim over *every* stored page's patch embeddings.

A scanned page has no text, so dense and BM25 recall cannot find it; a ColPali-family
model can, from its image alone. ``first_stage="visual"`` recalls by scoring the query
against all the pages that match the filter (exhaustively: about 1,000 patches per page,
so it suits collections up to some tens of thousands of pages, or a filter that narrows
them), and keeps the best ``n``. Their MaxSim is already computed, so the late-interaction
stage reuses it; the first-stage score is MaxSim per query token, the same fixed scale
the calibrated score gives ColBERT.

Example:
    >>> import numpy as np
    >>> from colrank.store.local.backend import LocalBackend
    >>> with LocalBackend().read() as view:       # an empty collection recalls nothing
    ...     len(visual_recall(view, np.ones((2, 4), "float32"), 5, None)[0].iids)
    0
"""

from __future__ import annotations

import numpy as np
import torch

from colrank.errors import InvalidInputError
from colrank.rerank.stored import score_stored
from colrank.scoring.records import ColbertScores, Recall
from colrank.store.base import ReadView
from colrank.store.filters import Filter
from colrank.timing import Timings, timed

VISUAL_RECALL_LIMIT = 100_000
"""Most pages one visual recall scores; narrow a larger collection with a filter."""


def visual_recall(
    view: ReadView,
    query_tokens: np.ndarray,
    n: int,
    filter: Filter | None,  # noqa: A002
    compute_dtype: torch.dtype = torch.float32,
    one_thread_rows: int = 0,
    timings: Timings | None = None,
) -> tuple[Recall, ColbertScores]:
    """The ``n`` pages with the best MaxSim, and their MaxSim (reused by the next stage)."""
    with timed(timings, "visual_recall"):
        found = view.iids_for(view.ids(filter))
    if len(found) > VISUAL_RECALL_LIMIT:
        raise InvalidInputError(
            f"visual recall scores every page, and {len(found)} match (at most "
            f"{VISUAL_RECALL_LIMIT}); narrow the search with a filter or use a text first stage"
        )
    iids = np.array(sorted(found.values()), dtype=np.int64)
    scores = score_stored(view, query_tokens, iids, timings, compute_dtype, one_thread_rows)
    if not len(iids):
        return Recall(iids, np.zeros(0), np.zeros(0), np.zeros(0)), scores
    order = np.argsort(-scores.mean, kind="stable")[:n]
    nothing = np.full(len(order), np.nan)
    recall = Recall(iids[order], scores.mean[order], nothing, nothing)
    return recall, ColbertScores(scores.total[order], scores.mean[order])


def check_text_recall(view: ReadView, recalls: list[Recall]) -> None:
    """Refuse a text first stage that could only find pages without text.

    A page with no text has a zero dense vector and no terms, so a dense, BM25 or hybrid
    recall gives it no evidence (score 0). When every candidate of a query is such a
    page, the collection is image-only for this query: say so instead of ranking at random.
    """
    for r in recalls:
        nothing = len(r.iids) and not np.any(np.nan_to_num(r.first) != 0)
        if nothing and not any(d.text.strip() for d in view.documents(r.iids.tolist())):
            raise InvalidInputError(
                "the pages this text query recalls have no text (scans or images "
                "without text): a dense or BM25 first stage cannot rank them; search "
                "with first_stage='visual' (MaxSim over the stored page patches)"
            )


__all__ = ["VISUAL_RECALL_LIMIT", "check_text_recall", "visual_recall"]
