"""The last step of a search or a rerank: order by the final score, an optional cross-encoder.

The candidates and their stage scores come from a first stage (recall from the index,
or the caller's documents) and the ColBERT stage; the score itself is
:mod:`colrank.scoring.final`'s.

Example:
    >>> import numpy as np
    >>> from colrank.config import SearchConfig
    >>> from colrank.results import Document
    >>> from colrank.scoring.records import ColbertScores, Recall
    >>> recall = Recall(np.array([0, 1]), np.zeros(2), np.full(2, np.nan), np.full(2, np.nan))
    >>> colbert = ColbertScores(np.array([1.0, 3.0]), np.array([0.5, 1.5]))
    >>> docs = [Document("a", "a"), Document("b", "b")]
    >>> hits = rank_candidates("q", recall, colbert, 1, SearchConfig(rerank_fusion="none"), 0.5,
    ...                        lambda positions: [docs[p] for p in positions], None)
    >>> [(h.id, h.score) for h in hits]
    [('b', 3.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from colrank.config import SearchConfig
from colrank.rank.cross_encoder import CrossEncoderScorer
from colrank.results import Hit
from colrank.scoring.final import Candidate, final_scores, to_hits
from colrank.scoring.records import ColbertScores, Recall
from colrank.timing import Timings, timed


def rank_candidates(
    query: str,
    recall: Recall,
    colbert: ColbertScores,
    k: int,
    strategy: SearchConfig,
    colbert_weight: float,
    documents: Callable[[list[int]], Sequence[Candidate]],
    cross_encoder: Callable[[str], CrossEncoderScorer] | None,
    timings: Timings | None = None,
    given: bool = False,
) -> list[Hit]:
    """The top ``k`` hits of one query, by the final score (or the cross-encoder's).

    ``documents`` maps candidate ids (``recall.iids``) to documents; ``given``: the
    candidates are the caller's documents (see :func:`~colrank.scoring.final.to_hits`).
    """
    final = final_scores(recall, colbert, strategy, colbert_weight)
    order = np.argsort(-final, kind="stable")
    if not strategy.cross_encoder_model or cross_encoder is None or len(order) == 0:
        top = order[:k]
        with timed(timings, "docstore"):
            docs = documents(recall.iids[top].tolist())
        return to_hits(docs, final[top], recall, colbert.total, top, given=given)
    top = order[: max(k, strategy.cross_encoder_top)]
    with timed(timings, "docstore"):
        docs = documents(recall.iids[top].tolist())
    with timed(timings, "cross_encoder"):
        scorer = cross_encoder(strategy.cross_encoder_model)
        ce = scorer.score(query, [d.text for d in docs]).astype(np.float64)
    best = np.argsort(-ce, kind="stable")[:k]
    chosen = [docs[b] for b in best]
    return to_hits(chosen, ce[best], recall, colbert.total, top[best], ce[best], given)


__all__ = ["rank_candidates"]
