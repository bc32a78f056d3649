"""LangChain face: ``ColrankVectorStore``, a LangChain ``VectorStore`` over one colrank index.

``similarity_search`` is colrank's two-stage search (hybrid recall, then ColBERT MaxSim
over stored tokens, fused into one calibrated score); ``add_documents`` upserts by id;
``delete`` and ``get_by_ids`` skip unknown ids, as LangChain's standard tests expect;
``max_marginal_relevance_search`` re-picks the two-stage results for variety using the
stored dense vectors. Returned documents carry exactly their stored metadata (scores
come as the second item of ``*_with_score`` results), and the async methods run the
sync ones in a worker thread (encoding and MaxSim are CPU/GPU work).

An ``embedding`` passed to :meth:`ColrankVectorStore.from_texts` (or the constructor)
becomes colrank's dense encoder, so recall uses the user's embedding model; ColBERT
stays colrank's.

Example:
    >>> from colrank import ColrankConfig
    >>> cfg = ColrankConfig.offline()
    >>> store = ColrankVectorStore.from_texts(["a", "b"], config=cfg)  # doctest: +SKIP
    >>> store.as_retriever(search_kwargs={"k": 1}).invoke("a")          # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from colrank.config import ColrankConfig
from colrank.errors import ModelMismatchError
from colrank.index import ColrankIndex
from colrank.integrations.langchain_embeddings import EMBEDDINGS_PREFIX, EmbeddingsEncoder
from colrank.results import Hit
from colrank.validation import check_list, recall_depth

IMAGE_KEY = "image_path"  # a Document that is a page image names its file here


def _doc(hit: Hit) -> Document:
    return Document(page_content=hit.text, metadata=dict(hit.metadata), id=hit.id)


class ColrankVectorStore(VectorStore):
    """A LangChain ``VectorStore`` whose search is colrank's two-stage search.

    Args:
        index: the colrank index to use (default: a new one from ``config``).
        config: settings for a new index (default: from the environment).
        embedding: a LangChain embedding model to use as the dense encoder of a new index.
        candidates: first-stage candidates reranked per search (raised to ``k``).
    """

    def __init__(
        self,
        index: ColrankIndex | None = None,
        *,
        config: ColrankConfig | None = None,
        embedding: Embeddings | None = None,
        candidates: int = 100,
    ) -> None:
        if index is not None and (config is not None or embedding is not None):
            raise ValueError("pass an index, or config/embedding for a new one, not both")
        dense = EmbeddingsEncoder(embedding) if embedding is not None else None
        self.index = index if index is not None else ColrankIndex(config, dense_encoder=dense)  # type: ignore[arg-type]
        self._embedding = embedding
        self.candidates = candidates

    @property
    def embeddings(self) -> Embeddings | None:
        """The LangChain embedding model given for dense recall (None: colrank's own)."""
        return self._embedding

    # ---------------------------------------------------------------- writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Index texts; an id that is already stored is replaced (upsert)."""
        _no_extra(kwargs, "add_texts")
        texts = check_list(texts, "texts")
        if ids is not None:  # LangChain passes None for documents without an id
            ids = [i if i else _new_id() for i in check_list(ids, "ids")]
        return self.index.upsert(texts, metadatas, ids)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Index documents (their ``id`` is kept; the others get new ids); upserts by id.

        A document whose metadata has ``image_path`` is a page image: a visual index
        encodes the image and uses ``page_content`` (may be empty) for its first stage;
        a text index refuses it (:class:`~colrank.errors.InvalidImageError`).
        """
        ids = kwargs.pop("ids", None) or [d.id for d in documents]
        if self.index.encoders.is_visual or any(IMAGE_KEY in d.metadata for d in documents):
            _no_extra(kwargs, "add_documents")
            return self.index.add_images(
                [d.metadata.get(IMAGE_KEY) for d in documents],
                [d.page_content for d in documents],
                [dict(d.metadata) for d in documents],
                [i if i else _new_id() for i in ids],
                on_conflict="replace",
            )
        return self.add_texts(
            [d.page_content for d in documents],
            [dict(d.metadata) for d in documents],
            ids=list(ids),
            **kwargs,
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Remove documents by id (unknown ids are skipped); True when done."""
        _no_extra(kwargs, "delete")
        if ids is None:
            raise ValueError("delete needs the ids to remove (colrank does not drop everything)")
        self.index.delete(check_list(ids, "ids"), missing="ignore")
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents for the ids that exist, in the given order."""
        docs = self.index.get(check_list(ids, "ids"), missing="ignore")
        return [Document(page_content=d.text, metadata=dict(d.metadata), id=d.id) for d in docs]

    # ---------------------------------------------------------------- search
    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,  # noqa: A002 - LangChain's name
        **kwargs: Any,
    ) -> list[Document]:
        """The top ``k`` by colrank's two-stage search (metadata ``filter`` applied first)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(  # type: ignore[override]
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,  # noqa: A002 - LangChain's name
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """``(document, relevance score)`` pairs; the score is colrank's calibrated score."""
        candidates = recall_depth(
            kwargs.pop("candidates", kwargs.pop("fetch_k", self.candidates)), k
        )
        _no_extra(kwargs, "similarity_search")
        hits = self.index.search(query, k=k, candidates=candidates, filter=filter)
        return [(_doc(h), h.score) for h in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # The calibrated score is a weighted mean of cosine, BM25 share and MaxSim per token:
        # already a relevance on [0, 1] in practice; clipped to honour LangChain's contract.
        return lambda score: min(1.0, max(0.0, score))

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,  # noqa: A002
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` of the two-stage top ``fetch_k``, picked for relevance and variety (MMR).

        A ``fetch_k`` below ``k`` is raised to ``k`` (LangChain callers often change only
        ``k``); the core :meth:`~colrank.index.ColrankIndex.search_diverse` refuses it.
        """
        _no_extra(kwargs, "max_marginal_relevance_search")
        fetch_k = max(fetch_k, k) if isinstance(fetch_k, int) and isinstance(k, int) else fetch_k
        hits = self.index.search_diverse(query, k, fetch_k, lambda_mult, filter)
        return [_doc(h) for h in hits]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Not offered: the ColBERT stage needs the query's text, not one vector."""
        raise NotImplementedError(
            "ColrankVectorStore searches by query text (its ColBERT stage encodes the query's "
            "tokens); use similarity_search(query)"
        )

    # ---------------------------------------------------------- build, save
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        config: ColrankConfig | None = None,
        **kwargs: Any,
    ) -> ColrankVectorStore:
        """A new store over ``texts`` (``embedding``: the dense encoder, default colrank's)."""
        store = cls(config=config, embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(  # type: ignore[override]
        cls,
        documents: list[Document],
        embedding: Embeddings | None = None,
        *,
        config: ColrankConfig | None = None,
        **kwargs: Any,
    ) -> ColrankVectorStore:
        """A new store over LangChain documents (ids kept); ``embedding`` as in :meth:`from_texts`.

        Unlike other stores, ``embedding`` may be left out: colrank encodes with its own models.
        """
        return cls.from_texts(
            [d.page_content for d in documents],
            embedding,
            [dict(d.metadata) for d in documents],
            ids=[d.id or _new_id() for d in documents],
            config=config,
            **kwargs,
        )

    def save(self, path: str | Path) -> Path:
        """Save the index atomically (see :meth:`ColrankIndex.save`)."""
        return self.index.save(path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        config: ColrankConfig | None = None,
        *,
        embedding: Embeddings | None = None,
        trust_models: bool = False,
        **kwargs: Any,
    ) -> ColrankVectorStore:
        """Open a saved index (from either framework, or the CLI) as a vector store.

        A store built with your own ``embedding`` needs it again here: its stored vectors
        were made with it.
        """
        dense = EmbeddingsEncoder(embedding) if embedding is not None else None
        try:
            index = ColrankIndex.load(
                path,
                config,
                dense_encoder=dense,
                trust_models=trust_models,  # type: ignore[arg-type]
            )
        except ModelMismatchError as exc:
            if embedding is None and f"'{EMBEDDINGS_PREFIX}" in str(exc):
                raise ModelMismatchError(
                    f"{exc}. It was built with your own LangChain Embeddings: pass them "
                    "again, ColrankVectorStore.load(path, embedding=...)"
                ) from exc
            raise
        store = cls(index, **kwargs)
        store._embedding = embedding
        return store


def _no_extra(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(kwargs)}")


def _new_id() -> str:
    return uuid.uuid4().hex


__all__ = ["ColrankVectorStore", "EmbeddingsEncoder"]
