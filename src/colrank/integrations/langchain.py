"""LangChain face: a retriever over a colrank index, and a reranking document compressor.

Both only translate types (``Document`` <-> :class:`colrank.Hit`) and delegate to
:class:`colrank.ColrankIndex`; the retrieval logic lives in the core.

Example:
    >>> from colrank import ColrankConfig
    >>> cfg = ColrankConfig.offline()
    >>> retriever = ColrankRetriever.from_texts(["a", "b"], config=cfg, k=1)  # doctest: +SKIP
    >>> retriever.invoke("question")[0].metadata["relevance_score"]  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from colrank import Document as ColrankDocument
from colrank import Hit
from colrank.config import ColrankConfig, with_model
from colrank.index import ColrankIndex
from colrank.results import stage_scores, with_scores
from colrank.validation import recall_depth

SCORE_KEY = "relevance_score"


def _ids_of(documents: Sequence[Document]) -> list[str]:
    """Each document's own id; a new random id only for those that have none."""
    return [d.id or uuid.uuid4().hex for d in documents]


def _hit_to_document(hit: Hit) -> Document:
    scores = {SCORE_KEY: hit.score, **stage_scores(hit), "rank": hit.rank}
    metadata = with_scores(hit.metadata, scores)  # a user's own "rank" becomes "user_rank"
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)


class ColrankRetriever(BaseRetriever):
    """colrank recall (hybrid by default) + ColBERT MaxSim rerank, as a LangChain retriever.

    Per-call overrides: ``retriever.invoke(query, k=3, candidates=50, filter={...})``.
    Returned documents keep their id; metadata gains ``relevance_score`` (the score they
    are ordered by: by default the calibrated score, comparable across queries and
    usable with a threshold; docs/search.md), each stage's score (``colbert_score``,
    ``dense_score``, ``bm25_score``) and ``rank``.

    Example:
        >>> retriever = ColrankRetriever(index=ColrankIndex.load("my-index"), k=4)  # doctest: +SKIP
        >>> docs = retriever.invoke("how does late interaction work?")             # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    index: ColrankIndex = Field(description="The colrank index to search.")
    k: int = Field(4, gt=0, description="Documents to return.")
    candidates: int = Field(
        100, gt=0, description="First-stage candidates to rerank (raised to k when smaller)."
    )
    filter: dict[str, Any] | None = Field(None, description="Metadata filter for every call.")
    search_type: Literal["similarity", "similarity_score_threshold"] = Field(
        "similarity",
        description="'similarity': the top k; 'similarity_score_threshold': only documents "
        "whose relevance score reaches score_threshold ('mmr' is not offered).",
    )
    score_threshold: float | None = Field(
        None, description="Keep documents whose relevance_score is at least this."
    )
    search_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="LangChain's habit: k, candidates (or fetch_k), filter, score_threshold.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_mmr(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("search_type") == "mmr":
            raise ValueError(
                "search_type='mmr' is not supported by ColrankRetriever: its ColBERT rerank "
                "already orders the candidates; use 'similarity' or 'similarity_score_threshold'"
            )
        return values

    @model_validator(mode="after")
    def _check(self) -> ColrankRetriever:
        self._options({})  # unknown search_kwargs keys fail here, not at the first query
        if (
            self.search_type == "similarity_score_threshold"
            and self._options({})["score_threshold"] is None
        ):
            raise ValueError("search_type='similarity_score_threshold' needs score_threshold")
        return self

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Field defaults, then ``search_kwargs``, then per-call keyword arguments."""
        merged: dict[str, Any] = {
            "k": self.k,
            "candidates": self.candidates,
            "filter": self.filter,
            "score_threshold": self.score_threshold,
        }
        for source in (self.search_kwargs, overrides):
            unknown = set(source) - {*merged, "fetch_k"}
            if unknown:
                raise ValueError(
                    f"unknown search argument(s) {sorted(unknown)}; "
                    "use k, candidates (or fetch_k), filter, score_threshold"
                )
            merged.update({("candidates" if k == "fetch_k" else k): v for k, v in source.items()})
        return merged

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        *,
        config: ColrankConfig | None = None,
        **kwargs: Any,
    ) -> ColrankRetriever:
        """Build a new index from texts and wrap it."""
        index = ColrankIndex(config)
        index.add(list(texts), metadatas, ids)
        return cls(index=index, **kwargs)

    @classmethod
    def from_documents(
        cls, documents: Sequence[Document], *, config: ColrankConfig | None = None, **kwargs: Any
    ) -> ColrankRetriever:
        """Build a new index from LangChain documents (their ids are kept when set)."""
        return cls.from_texts(
            [d.page_content for d in documents],
            [dict(d.metadata) for d in documents],
            _ids_of(documents),
            config=config,
            **kwargs,
        )

    @classmethod
    def load(
        cls,
        path: str | Path,
        config: ColrankConfig | None = None,
        *,
        trust_models: bool = False,
        **kwargs: Any,
    ) -> ColrankRetriever:
        """Wrap an index saved with ``ColrankIndex.save`` (or ``colrank index``)."""
        return cls(index=ColrankIndex.load(path, config, trust_models=trust_models), **kwargs)

    def add_documents(self, documents: Sequence[Document]) -> list[str]:
        """Add LangChain documents to the index; returns their ids."""
        return self.index.add(
            [d.page_content for d in documents],
            [dict(d.metadata) for d in documents],
            _ids_of(documents),
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        k = options["k"]
        candidates = recall_depth(options["candidates"], k)
        hits = self.index.search(query, k=k, candidates=candidates, filter=options["filter"])
        threshold = options["score_threshold"]
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return [_hit_to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # Encoding and MaxSim are CPU/GPU-bound: run them in a worker thread.
        return await run_in_executor(
            None,
            self._get_relevant_documents,
            query,
            run_manager=run_manager.get_sync(),
            **kwargs,
        )


class ColrankReranker(BaseDocumentCompressor):
    """Rerank the documents of any LangChain retriever with colrank's score.

    ``relevance_score`` is the same quantity as :class:`ColrankRetriever`'s (by default
    the calibrated score of dense, BM25 and ColBERT evidence, comparable across
    queries; see docs/search.md), with each stage's own score beside it
    (``colbert_score``, ``dense_score``, ``bm25_score``) and ``rank``. Documents already
    in the index (same id and text) are scored from their stored embeddings and get the
    retriever's exact score; others are encoded once and cached by content hash. Without
    an ``index`` there are no corpus statistics, so the score leaves BM25 out and does
    not compare with an index's scores. Returns copies (ids kept); a
    ``relevance_score`` the documents already carried moves to ``retrieval_score``.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> retriever = ContextualCompressionRetriever(  # doctest: +SKIP
        ...     base_compressor=ColrankReranker(top_n=5),
        ...     base_retriever=vectorstore.as_retriever(search_kwargs={"k": 50}),
        ... )
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    top_n: int | None = Field(3, description="Documents to keep (None: all, reordered).")
    model: str | None = Field(
        None, description="ColBERT model (hub id, path or alias) when no index is given."
    )
    device: str | None = Field(None, description="auto, cpu, cuda[:N] or mps.")
    config: ColrankConfig | None = Field(
        None, description="Model settings when no index is given (default: from the environment)."
    )
    index: ColrankIndex | None = Field(
        None, description="An index whose models and stored embeddings to use."
    )
    _ranker: ColrankIndex | None = PrivateAttr(None)

    @property
    def ranker(self) -> ColrankIndex:
        """The index whose ``rerank`` scores the documents: the given one, or an empty one.

        An empty index built from the settings holds no documents: every document is
        encoded (and cached), and there is no BM25 (no collection statistics).
        """
        if self._ranker is None:
            # `is None`, not `or`: an empty index is falsy but still the one to use
            if self.index is not None:
                if self.model or self.device or self.config:
                    raise ValueError("pass model/device/config or an index, not both")
                self._ranker = self.index
            else:
                config = self.config or ColrankConfig.from_env()
                self._ranker = ColrankIndex(with_model(config, self.model, self.device))
        return self._ranker

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Return the ``top_n`` documents reordered by ColBERT score."""
        if not documents:
            return []
        inputs = [ColrankDocument(d.page_content, d.id, dict(d.metadata)) for d in documents]
        hits = self.ranker.rerank(query, inputs, k=self.top_n)
        out = []
        for hit in hits:
            original = documents[int(hit.position)]  # type: ignore[arg-type]
            metadata = dict(original.metadata)
            if SCORE_KEY in metadata:  # the first retriever's score, kept under its own name
                metadata["retrieval_score"] = metadata.pop(SCORE_KEY)
            scores = {SCORE_KEY: hit.score, **stage_scores(hit), "rank": hit.rank}
            metadata = with_scores(metadata, scores)
            out.append(
                Document(page_content=original.page_content, metadata=metadata, id=original.id)
            )
        return out


__all__ = ["ColrankReranker", "ColrankRetriever"]
