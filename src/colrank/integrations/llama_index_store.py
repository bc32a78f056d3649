"""LlamaIndex face: a vector store (``BasePydanticVectorStore``) over one colrank index.

Plug it into ``StorageContext`` / ``VectorStoreIndex.from_vector_store``: ``insert`` adds
nodes (text, metadata, relationships and metadata exclusions kept, as LlamaIndex's own
stores keep them in ``_node_content``), ``delete_ref_doc`` removes every chunk of a
source document, and each query runs colrank's two-stage search *inside* the store, so
``VectorStoreIndex.as_query_engine()`` gets the ColBERT rerank with no postprocessor.

The store encodes nodes and queries itself (dense + ColBERT), so it asks LlamaIndex for
no query embedding (``is_embedding_query = False``). ``VectorStoreIndex`` still calls an
``embed_model`` on inserted nodes (OpenAI's when none is set): :meth:`ColrankVectorStore.as_index`
builds the index with ``store.embed_model``, which encodes nothing, so each node is
encoded once, by colrank, and no OpenAI package is asked for.

Example:
    >>> store = ColrankVectorStore(config=ColrankConfig.offline())     # doctest: +SKIP
    >>> index = store.as_index(docs)                                   # doctest: +SKIP
    >>> index.as_query_engine(llm=llm).query("why does bread rise?")    # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import BaseNode, Document, ImageNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from colrank.config import ColrankConfig
from colrank.index import ColrankIndex
from colrank.integrations.llama_index import (
    NODE_ID_KEY,
    node_image,
    node_row,
    stored_node,
    to_colrank_filter,
)
from colrank.validation import check_k, check_list, recall_depth

PLACEHOLDER = (0.0,)  # what ColrankEmbedding answers: the store encodes nodes itself
_DEFAULT_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.HYBRID)
_LEXICAL_MODES = (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE)


class ColrankEmbedding(BaseEmbedding):
    """The ``embed_model`` for a colrank store: it answers LlamaIndex and encodes nothing.

    ``VectorStoreIndex`` embeds every node with its ``embed_model`` before handing it to
    the store, and falls back to OpenAI when none is set. A colrank store encodes each
    node itself (dense and ColBERT in one backbone call) and needs no query embedding,
    so those vectors would never be used: this model gives LlamaIndex a one-number
    placeholder instead, and nothing is encoded twice. Use it with colrank stores only.
    """

    def __init__(self, index: ColrankIndex, **kwargs: Any) -> None:
        super().__init__(model_name=f"colrank-store:{index.encoders.names[0]}", **kwargs)

    @classmethod
    def class_name(cls) -> str:
        """Name used in LlamaIndex serialisation."""
        return "ColrankEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return list(PLACEHOLDER)

    def _get_text_embedding(self, text: str) -> list[float]:
        return list(PLACEHOLDER)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [list(PLACEHOLDER) for _ in texts]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return list(PLACEHOLDER)


class ColrankVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store whose query is colrank's two-stage search.

    Args:
        index: the colrank index to use (default: a new one from ``config``).
        config: settings for a new index (default: from the environment).
        candidates: first-stage candidates reranked per query (raised to the top k).
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    candidates: int = 100

    _index: ColrankIndex = PrivateAttr()

    def __init__(
        self,
        index: ColrankIndex | None = None,
        *,
        config: ColrankConfig | None = None,
        candidates: int = 100,
    ) -> None:
        if index is not None and config is not None:
            raise ValueError("pass an index or a config for a new one, not both")
        super().__init__(candidates=candidates)
        self._index = index if index is not None else ColrankIndex(config)

    @classmethod
    def class_name(cls) -> str:
        """Name used in LlamaIndex serialisation."""
        return "ColrankVectorStore"

    @property
    def client(self) -> ColrankIndex:
        """The colrank index behind the store."""
        return self._index

    @property
    def embed_model(self) -> ColrankEmbedding:
        """The ``embed_model`` to give LlamaIndex with this store (encodes nothing itself)."""
        return ColrankEmbedding(self._index)

    def node_parser(self, overlap: int = 32) -> SentenceSplitter:
        """A splitter whose chunks fit colrank's ColBERT document length, in its tokens.

        LlamaIndex's default ``chunk_size=1024`` makes chunks that colrank would cut at
        ``document_length`` (256 tokens for the offline model).
        """
        colbert = self._index.colbert_encoder
        tokenizer = colbert.model.tokenizer
        size = colbert.document_length - 8  # room for the special and marker tokens
        return SentenceSplitter(
            chunk_size=size, chunk_overlap=min(overlap, size // 4), tokenizer=tokenizer.tokenize
        )

    def as_index(self, documents: Sequence[Document] = (), **kwargs: Any) -> VectorStoreIndex:
        """A ``VectorStoreIndex`` over this store, holding ``documents``.

        No embedding model is needed (LlamaIndex asks for none, and no OpenAI package), each
        node is encoded once, by colrank, and documents are split by :meth:`node_parser`
        unless ``transformations=`` says otherwise. Other ``kwargs`` go to
        ``VectorStoreIndex``.
        """
        kwargs.setdefault("embed_model", self.embed_model)
        kwargs.setdefault("transformations", [self.node_parser()])
        context = StorageContext.from_defaults(vector_store=self)
        return VectorStoreIndex.from_documents(list(documents), storage_context=context, **kwargs)

    # ---------------------------------------------------------------- writes
    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Index nodes (upsert by node id); returns their ids."""
        _no_extra(add_kwargs, "add")
        if not nodes:
            return []
        if self._index.encoders.is_visual or any(isinstance(n, ImageNode) for n in nodes):
            return self._add_images(nodes)  # a text index refuses them (InvalidImageError)
        rows = [node_row(n) for n in nodes]
        self._warn_if_cut([r.encode_text for r in rows])
        return self._index.upsert(
            [r.text for r in rows],
            [r.metadata for r in rows],
            [r.id for r in rows],
            encode_texts=[r.encode_text for r in rows],
        )

    def _add_images(self, nodes: list[BaseNode]) -> list[str]:
        """ImageNodes as pages: the image is encoded, the text feeds the first stage."""
        images = [node_image(n) for n in nodes]
        lighter = [
            n.model_copy(update={"image": None}) if isinstance(n, ImageNode) else n for n in nodes
        ]
        rows = [node_row(n) for n in lighter]  # the base64 image is not kept in metadata
        return self._index.add_images(
            images,
            [r.text for r in rows],
            [r.metadata for r in rows],
            [r.id for r in rows],
            on_conflict="replace",
        )

    def _warn_if_cut(self, texts: list[str]) -> None:
        colbert = self._index.colbert_encoder
        cut = colbert.count_truncated(texts)
        if cut:
            warnings.warn(
                f"{cut} of {len(texts)} nodes are longer than colrank's document_length="
                f"{colbert.document_length} ColBERT tokens and are cut there; split documents "
                "with store.node_parser() (or SentenceSplitter(chunk_size=...) below that), "
                "or build with store.as_index(documents)",
                stacklevel=3,
            )

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove every node of the source document ``ref_doc_id``."""
        _no_extra(delete_kwargs, "delete")
        ids = self._index.ids(filter={"ref_doc_id": ref_doc_id})
        if ids:
            self._index.delete(ids, missing="ignore")

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Remove nodes by id and/or metadata filter (both: nodes matching both)."""
        _no_extra(delete_kwargs, "delete_nodes")
        ids = self._matching(node_ids, filters)
        if ids:
            self._index.delete(ids, missing="ignore")

    def clear(self) -> None:
        """Remove every node."""
        ids = self._index.ids()
        if ids:
            self._index.delete(ids)

    # ----------------------------------------------------------------- reads
    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Stored nodes by id and/or metadata filter (relationships and exclusions kept)."""
        docs = self._index.get(self._matching(node_ids, filters), missing="ignore")
        return [stored_node(d.text, d.metadata, d.id) for d in docs]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Colrank's two-stage search for ``query.query_str`` (filters applied first)."""
        _no_extra(kwargs, "query")
        if not query.query_str:
            raise ValueError(
                "ColrankVectorStore searches by query text (its ColBERT stage encodes the "
                "query's tokens); VectorStoreQuery.query_str is empty"
            )
        k = check_k(query.similarity_top_k, "similarity_top_k")
        spec = _restrict(to_colrank_filter(query.filters), query.node_ids, query.doc_ids)
        candidates = recall_depth(self.candidates, k)
        if query.mode in _DEFAULT_MODES:
            hits = self._index.search(query.query_str, k=k, candidates=candidates, filter=spec)
        elif query.mode in _LEXICAL_MODES:
            hits = self._index.search(
                query.query_str, k=k, candidates=candidates, filter=spec, first_stage="bm25"
            )
        elif query.mode == VectorStoreQueryMode.MMR:
            lam = 0.5 if query.mmr_threshold is None else query.mmr_threshold
            hits = self._index.search_diverse(query.query_str, k, candidates, lam, spec)
        else:
            raise ValueError(
                f"query mode {query.mode.value!r} is not supported by ColrankVectorStore; use "
                "default, hybrid, text_search, sparse or mmr"
            )
        return VectorStoreQueryResult(
            nodes=[stored_node(h.text, h.metadata, h.id) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    # ----------------------------------------------------------- persistence
    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Save the index as a folder beside LlamaIndex's other stores."""
        if fs is not None:
            raise ValueError("ColrankVectorStore persists to the local file system only")
        if len(self._index):
            self._index.save(_folder(persist_path))

    @classmethod
    def from_persist_path(
        cls,
        persist_path: str,
        config: ColrankConfig | None = None,
        *,
        trust_models: bool = False,
        **kwargs: Any,
    ) -> ColrankVectorStore:
        """Open what :meth:`persist` wrote (the same path LlamaIndex passed to it)."""
        index = ColrankIndex.load(_folder(persist_path), config, trust_models=trust_models)
        return cls(index, **kwargs)

    def _matching(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> list[str]:
        spec = to_colrank_filter(filters)
        if node_ids is None:
            return self._index.ids(filter=spec) if spec else []
        node_ids = check_list(node_ids, "node_ids")
        if spec is None:
            return node_ids
        matching = set(self._index.ids(filter=spec))
        return [i for i in node_ids if i in matching]


def _restrict(
    spec: dict[str, Any] | None, node_ids: list[str] | None, doc_ids: list[str] | None
) -> dict[str, Any] | None:
    """The query's filter and id restrictions as one colrank filter.

    An empty ``node_ids`` list means no restriction: ``VectorStoreIndex.as_retriever``
    passes the ids its index struct lists, which is empty for a store that keeps the text.
    """
    clauses = [c for c in (spec,) if c]
    if node_ids:
        clauses.append({NODE_ID_KEY: {"$in": check_list(node_ids, "node_ids")}})
    if doc_ids:
        clauses.append({"ref_doc_id": {"$in": check_list(doc_ids, "doc_ids")}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _without_image(node: BaseNode) -> BaseNode:
    return node.model_copy(update={"image": None}) if isinstance(node, ImageNode) else node


def _folder(persist_path: str) -> Path:
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path


def _no_extra(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword arguments {sorted(kwargs)}")


__all__ = ["ColrankEmbedding", "ColrankVectorStore"]
