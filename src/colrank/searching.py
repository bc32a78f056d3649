"""The search side of :class:`~colrank.index.ColrankIndex`: every way to ask a question.

Each method checks its arguments and hands them to the
:class:`~colrank.pipeline.SearchPipeline`; none holds retrieval logic.

Example:
    >>> index.search("how does late interaction score documents?", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from colrank.errors import InvalidInputError
from colrank.results import CandidateScores, Document, Hit
from colrank.store.filters import Filter
from colrank.timing import Timings
from colrank.validation import (
    check_candidates,
    check_documents,
    check_filter,
    check_fraction,
    check_k,
    check_queries,
    check_query,
    check_texts,
)

DEFAULT_CANDIDATES = 100
"""First-stage candidates reranked per query when a search names none (raised to ``k``)."""

if TYPE_CHECKING:
    from colrank.config import ColrankConfig
    from colrank.pipeline import SearchPipeline


class SearchMethods:
    """Searches over ``self.pipeline`` with ``self.config`` (mixed into ColrankIndex)."""

    config: ColrankConfig
    pipeline: SearchPipeline

    def search(
        self,
        query: str,
        k: int = 10,
        candidates: int | None = None,
        filter: Filter | None = None,  # noqa: A002 - the name users of vector stores expect
        *,
        first_stage: str | None = None,
        rerank_fusion: str | None = None,
        timings: Timings | None = None,
    ) -> list[Hit]:
        """Recall ``candidates`` documents, rerank them with ColBERT, return the best ``k``.

        Args:
            query: the question.
            k: results to return.
            candidates: documents the first stage recalls for reranking (default:
                :data:`DEFAULT_CANDIDATES`, raised to ``k`` when ``k`` is larger; the
                documents in the index bound the work either way). A number given that
                is below ``k`` is refused: those ``k`` results cannot come from fewer
                candidates.
            filter: metadata filter, e.g. ``{"year": {"$gte": 2020}}`` (see
                :mod:`colrank.store.filters`); applied before the top-k cut.
            first_stage: ``dense``, ``bm25``, ``hybrid``, ``visual`` (MaxSim over every
                page, docs/visual.md) or ``muvera`` (MUVERA encodings of the stored
                ColBERT tokens, no dense model; docs/search.md) (default:
                ``config.search``).
            rerank_fusion: ``calibrated``, ``none``, ``interpolate`` or ``rrf`` (default:
                ``config.search``, ``calibrated``: see :class:`~colrank.config.SearchConfig`).
            timings: a dict to receive this call's seconds per stage (see
                :mod:`colrank.pipeline`).
        """
        return self.search_many(
            [check_query(query)],
            k=k,
            candidates=candidates,
            filter=filter,
            first_stage=first_stage,
            rerank_fusion=rerank_fusion,
            timings=timings,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        candidates: int | None = None,
        filter: Filter | None = None,  # noqa: A002
        *,
        first_stage: str | None = None,
        rerank_fusion: str | None = None,
        timings: Timings | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries, encoding them in one batch."""
        queries = check_queries(queries)
        k = check_k(k)
        candidates = max(DEFAULT_CANDIDATES, k) if candidates is None else candidates
        candidates = check_candidates(candidates, k)
        strategy = self.config.search.overridden(first_stage, rerank_fusion)
        return self.pipeline.search(queries, k, candidates, check_filter(filter), strategy, timings)

    def recall(
        self,
        query: str,
        k: int = 10,
        filter: Filter | None = None,  # noqa: A002
        *,
        first_stage: str | None = None,
        timings: Timings | None = None,
    ) -> list[Hit]:
        """First stage only (no MaxSim): the top ``k`` by the first stage's own score."""
        k = check_k(k)
        query = check_query(query)
        strategy = self.config.search.overridden(first_stage)
        return self.pipeline.recall_only(query, k, check_filter(filter), strategy, timings)

    def search_diverse(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,  # noqa: A002
    ) -> list[Hit]:
        """The best ``fetch_k`` by :meth:`search`, then ``k`` of them picked by MMR.

        Relevance is the search's own score; redundancy the cosine between stored dense
        vectors (:func:`colrank.rank.diversity.mmr`). ``rank`` is the MMR order.
        """
        k = check_k(k)
        fetch_k = check_k(fetch_k, "fetch_k")
        if fetch_k < k:
            raise InvalidInputError(f"fetch_k ({fetch_k}) must be >= k ({k}): MMR picks k of them")
        lambda_mult = check_fraction(lambda_mult, "lambda_mult")
        hits = self.search(query, k=fetch_k, candidates=max(fetch_k, 100), filter=filter)
        return self.pipeline.diversify(hits, k, lambda_mult)

    def dense_search(
        self,
        query: str,
        k: int = 10,
        filter: Filter | None = None,  # noqa: A002
    ) -> list[Hit]:
        """Dense recall only: the top ``k`` by inner product (``score`` = dense score)."""
        return self.recall(query, k, filter, first_stage="dense")

    def candidate_scores(
        self,
        queries: Sequence[str],
        candidates: int = 100,
        filter: Filter | None = None,  # noqa: A002
        *,
        first_stage: str | None = None,
    ) -> list[CandidateScores]:
        """Every stage's scores for each query's candidates, in first-stage order.

        The building block for evaluation and fusion sweeps: ``search`` orders these
        candidates by ``final_scores``.
        """
        queries = check_queries(queries)
        candidates = check_k(candidates, "candidates")
        strategy = self.config.search.overridden(first_stage)
        return self.pipeline.candidate_scores(queries, candidates, check_filter(filter), strategy)

    # ---------------------------------------------------------------- rerank
    def rerank(
        self,
        query: str,
        documents: Sequence[str | Document],
        k: int | None = None,
        *,
        encode_texts: Sequence[str] | None = None,
        first_stage: str | None = None,
        rerank_fusion: str | None = None,
        timings: Timings | None = None,
    ) -> list[Hit]:
        """Rerank documents that come from elsewhere (another retriever, a database).

        The documents are the candidates (the first stage); then the search's own stages
        run. ``Hit.score`` is the search's score: a document whose id is in this index
        with the same text is scored from its stored embeddings and gets exactly the
        score :meth:`search` gives it over the same candidates, for every
        ``rerank_fusion``. With the default ``calibrated`` fusion the score does not
        depend on the other candidates, so one threshold serves both; ``interpolate``
        and ``rrf`` scores compare only within one list. Others are encoded and cached
        by content hash (``config.rerank_cache_bytes``). ``Hit.position`` is the
        document's index in ``documents``.

        Args:
            query: the question.
            documents: strings, :class:`Document` objects or ``{"text", "id", "metadata"}``.
            k: results to return (default: all, reordered).
            encode_texts: what to encode for documents the index does not hold, one per
                document (default: their text), e.g. a LlamaIndex node with its metadata.
            first_stage: how the first-stage score is made, as in :meth:`search`.
            rerank_fusion: the final score's fusion, as in :meth:`search`.
            timings: a dict to receive this call's seconds per stage.
        """
        query = check_query(query)
        docs = check_documents(documents)
        k = len(docs) if k is None else check_k(k)
        texts = None
        if encode_texts is not None:
            texts = check_texts(encode_texts) if docs else []
            if len(texts) != len(docs):
                raise InvalidInputError("encode_texts must have one entry per document")
        strategy = self.config.search.overridden(first_stage, rerank_fusion)
        return self.pipeline.rerank(query, docs, k, strategy, texts, timings)


__all__ = ["DEFAULT_CANDIDATES", "SearchMethods"]
