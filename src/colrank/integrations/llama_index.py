"""LlamaIndex face: a retriever over a colrank index, and a reranking node postprocessor.

Both translate types (``NodeWithScore`` <-> :class:`colrank.Hit`, ``MetadataFilters``
-> colrank filter dicts) and delegate to :class:`colrank.ColrankIndex`. The same
saved index serves this face and the LangChain one.

Example:
    >>> from llama_index.core.query_engine import RetrieverQueryEngine        # doctest: +SKIP
    >>> retriever = ColrankRetriever.load("my-index", similarity_top_k=5)     # doctest: +SKIP
    >>> engine = RetrieverQueryEngine.from_args(retriever, llm=llm)           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import (
    BaseNode,
    ImageNode,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from colrank import Document as ColrankDocument
from colrank import Hit
from colrank.config import ColrankConfig, with_model
from colrank.errors import InvalidFilterError
from colrank.index import ColrankIndex
from colrank.metadata import to_json_metadata
from colrank.results import stage_scores, with_scores
from colrank.store.filters import MAX_DEPTH as MAX_FILTER_DEPTH
from colrank.validation import recall_depth

dispatcher = get_dispatcher(__name__)

_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}


def to_colrank_filter(filters: MetadataFilters | None, depth: int = 0) -> dict[str, Any] | None:
    """Translate LlamaIndex ``MetadataFilters`` into a colrank filter dict.

    Nesting deeper than colrank's filters allow is refused here, with the same
    :class:`~colrank.errors.InvalidFilterError`, before the translation recurses.
    """
    if filters is None or not filters.filters:
        return None
    if depth > MAX_FILTER_DEPTH:
        raise InvalidFilterError(f"the filter nests deeper than {MAX_FILTER_DEPTH} levels")
    clauses = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            nested = to_colrank_filter(item, depth + 1)
            if nested:
                clauses.append(nested)
            continue
        operator = getattr(item, "operator", FilterOperator.EQ)
        if operator == FilterOperator.IS_EMPTY:
            clauses.append({item.key: {"$exists": False}})
        elif operator in _OPERATORS:
            clauses.append({item.key: {_OPERATORS[operator]: item.value}})
        else:
            raise InvalidFilterError(
                f"LlamaIndex filter operator {operator.value!r} is not supported by colrank; "
                f"supported: {[op.value for op in _OPERATORS]} and is_empty"
            )
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        raise InvalidFilterError("FilterCondition.NOT is not supported by colrank filters")
    if len(clauses) == 1:
        return clauses[0]
    return {"$or" if condition == FilterCondition.OR else "$and": clauses}


# Metadata key holding a node's source document id (LlamaIndex's ``ref_doc_id``).
SOURCE_KEY = "ref_doc_id"
# Bookkeeping keys added to returned nodes; kept out of the LLM prompt and embedding text.
_BOOKKEEPING = ("dense_score", "colbert_score", "bm25_score", "cross_encoder_score", "rank")


NODE_ID_KEY = "_node_id"  # top-level copy of the node id, so node ids can filter


def node_row(node: BaseNode, metadata_mode: MetadataMode = MetadataMode.EMBED) -> NodeRow:
    """How a node is stored: its own text, what to encode, and metadata that restores it.

    The metadata is LlamaIndex's own layout (``node_to_metadata_dict``: the node's fields in
    ``_node_content``, its metadata at the top level for filters, ``ref_doc_id``), so
    relationships and excluded-key lists survive the round trip.
    """
    stored = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    return NodeRow(
        node.node_id,
        node.get_content(metadata_mode=MetadataMode.NONE),
        node.get_content(metadata_mode=metadata_mode),
        to_json_metadata({**stored, NODE_ID_KEY: node.node_id}),
    )


class NodeRow(NamedTuple):
    """A node as colrank stores it."""

    id: str
    text: str
    encode_text: str
    metadata: dict[str, Any]


def stored_node(text: str, metadata: dict[str, Any], node_id: str | None = None) -> BaseNode:
    """The node :func:`node_row` stored (relationships and exclusions included).

    A document written another way (``ColrankIndex.add``, the LangChain face, the CLI)
    has no ``_node_content``: it becomes a ``TextNode`` of its text, id and metadata.
    """
    if "_node_content" not in metadata:
        if "has_text" in metadata:  # a page image stored by add_pdf / add_images
            return page_node(node_id or "", text, dict(metadata))
        return TextNode(id_=node_id or "", text=text, metadata=dict(metadata))
    return metadata_dict_to_node(metadata, text=text)


def node_image(node: BaseNode) -> str | bytes:
    """The image an ``ImageNode`` references (its path, or its base64 image decoded)."""
    import base64

    from colrank.errors import InvalidImageError

    if isinstance(node, ImageNode):
        if node.image_path:
            return node.image_path
        if node.image:
            return base64.b64decode(node.image)
    raise InvalidImageError(
        f"node {node.node_id!r} carries no image (a visual index stores ImageNodes with "
        "image_path or image)"
    )


def page_node(
    node_id: str, text: str, metadata: dict[str, Any], hidden: Sequence[str] = ()
) -> ImageNode:
    """A page stored by ``add_pdf`` / ``add_images``: an ImageNode (path of an image file)."""
    source = str(metadata.get("source") or "")
    image_path = source if source and not source.lower().endswith(".pdf") else None
    return ImageNode(
        id_=node_id,
        text=text,
        image_path=image_path,
        metadata=metadata,
        excluded_llm_metadata_keys=list(hidden),
        excluded_embed_metadata_keys=list(hidden),
    )


def _hit_to_node(hit: Hit) -> NodeWithScore:
    scores = {**stage_scores(hit), "rank": hit.rank}
    if "_node_content" in hit.metadata:  # stored from a node: give the same node back
        node = stored_node(hit.text, hit.metadata)
        node.metadata = with_scores(node.metadata, scores)
        for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            keys.extend(k for k in scores if k not in keys)
        return NodeWithScore(node=node, score=hit.score)
    metadata = with_scores(hit.metadata, scores)
    hidden = [k for k in (*_BOOKKEEPING, SOURCE_KEY) if k in metadata]
    if "has_text" in hit.metadata:  # a page image (colrank.pages)
        node = page_node(hit.id or "", hit.text, metadata, hidden)
        return NodeWithScore(node=node, score=hit.score)
    node = TextNode(
        id_=hit.id or "",
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    source = hit.metadata.get(SOURCE_KEY)
    if isinstance(source, str) and source:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=source)
    return NodeWithScore(node=node, score=hit.score)


class ColrankRetriever(BaseRetriever):
    """Hybrid recall (dense + BM25) + ColBERT MaxSim rerank, as a LlamaIndex retriever.

    ``NodeWithScore.score`` is the final score (by default the calibrated score of dense,
    BM25 and ColBERT evidence, comparable across queries; docs/search.md);
    node metadata gains each stage's score and ``rank`` (excluded from the LLM and
    embedding text of the node); node ids are the colrank ids.

    Example:
        >>> retriever = ColrankRetriever.from_documents(docs, similarity_top_k=3)  # doctest: +SKIP
        >>> retriever.retrieve("what is late interaction?")                       # doctest: +SKIP
    """

    def __init__(
        self,
        index: ColrankIndex,
        similarity_top_k: int = 4,
        candidates: int = 100,
        filters: MetadataFilters | None = None,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager, **kwargs)
        self.index = index
        self.similarity_top_k = similarity_top_k
        self.candidates = candidates
        self.filters = filters

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[BaseNode],
        config: ColrankConfig | None = None,
        *,
        metadata_mode: MetadataMode = MetadataMode.EMBED,
        **kwargs: Any,
    ) -> ColrankRetriever:
        """Index nodes (ids, metadata, relationships and excluded keys kept) and wrap the index.

        The encoded text is ``node.get_content(metadata_mode)``, as LlamaIndex embeds
        nodes; the node's own text is what retrieval returns. Chunk long documents
        with a node parser first: retrieved nodes come back with their relationships
        (``node.ref_doc_id`` included) and ``excluded_*_metadata_keys``.
        """
        index = ColrankIndex(config)
        rows = [node_row(n, metadata_mode) for n in nodes]
        index.add(
            [r.text for r in rows],
            [r.metadata for r in rows],
            [r.id for r in rows],
            encode_texts=[r.encode_text for r in rows],
        )
        return cls(index, **kwargs)

    @classmethod
    def from_documents(
        cls, documents: Sequence[BaseNode], config: ColrankConfig | None = None, **kwargs: Any
    ) -> ColrankRetriever:
        """Same as :meth:`from_nodes` (a LlamaIndex ``Document`` is a node)."""
        return cls.from_nodes(documents, config, **kwargs)

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
        return cls(ColrankIndex.load(path, config, trust_models=trust_models), **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(
            query_bundle.query_str,
            k=self.similarity_top_k,
            candidates=recall_depth(self.candidates, self.similarity_top_k),
            filter=to_colrank_filter(self.filters),
        )
        return [_hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # Encoding and MaxSim are CPU/GPU-bound: run them in a worker thread.
        return await asyncio.to_thread(self._retrieve, query_bundle)


class ColrankRerank(BaseNodePostprocessor):
    """Rerank the nodes of any retriever with colrank (a drop-in for ``ColbertRerank``).

    Takes ``ColbertRerank``'s ``top_n``, ``model``, ``device`` and
    ``keep_retrieval_score``; scores with a real PyLate ColBERT (projection, markers,
    MaxSim over query tokens), batches the nodes, and caches their embeddings by
    content hash across queries. ``NodeWithScore.score`` is the same quantity as
    :class:`ColrankRetriever`'s (by default the calibrated score, comparable across
    queries; docs/search.md); nodes the index already holds use their stored
    embeddings and get the retriever's exact score. Without an ``index`` there are no
    corpus statistics, so the score leaves BM25 out and does not compare with an
    index's scores. Returns new ``NodeWithScore`` objects; with ``keep_retrieval_score``
    the previous score goes to a copy of the node's metadata.

    Example:
        >>> query_engine = vector_index.as_query_engine(                # doctest: +SKIP
        ...     similarity_top_k=20, node_postprocessors=[ColrankRerank(top_n=5)]
        ... )
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    top_n: int = Field(default=5, gt=0, description="Nodes to return.")
    model: str | None = Field(
        default=None, description="ColBERT model (hub id, path or alias); None: from config/env."
    )
    device: str | None = Field(default=None, description="auto, cpu, cuda[:N] or mps.")
    config: ColrankConfig | None = Field(
        default=None,
        description="Model settings when no index is given (default: from the environment).",
    )
    keep_retrieval_score: bool = Field(
        default=False, description="Keep the previous score in metadata['retrieval_score']."
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which node content is scored."
    )
    _index: ColrankIndex = PrivateAttr()

    def __init__(self, index: ColrankIndex | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if index is not None:
            if self.model or self.device or self.config:
                raise ValueError("pass model/device/config or an index, not both")
            self._index = index
        else:  # an empty index: every node is encoded (and cached)
            config = with_model(self.config or ColrankConfig.from_env(), self.model, self.device)
            self._index = ColrankIndex(config)

    @classmethod
    def class_name(cls) -> str:
        """Name used in LlamaIndex serialisation."""
        return "ColrankRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("ColrankRerank needs a query_bundle (the query to rerank for).")
        model_name = self._index.encoders.names[1]
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle, nodes=nodes, top_n=self.top_n, model_name=model_name
            )
        )
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return []
        payload = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: model_name,
            EventPayload.QUERY_STR: query_bundle.query_str,
            EventPayload.TOP_K: self.top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            # a node the index holds (same id and text) is scored from its stored embeddings
            docs = [
                ColrankDocument(n.node.get_content(metadata_mode=MetadataMode.NONE), n.node.node_id)
                for n in nodes
            ]
            encode = [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]
            hits = self._index.rerank(
                query_bundle.query_str, docs, k=self.top_n, encode_texts=encode
            )
            reranked = [
                self._rescored(nodes[int(h.position)], h.score)  # type: ignore[arg-type]
                for h in hits
            ]
            event.on_end(payload={EventPayload.NODES: reranked})
        dispatcher.event(ReRankEndEvent(nodes=reranked))
        return reranked

    def _rescored(self, original: NodeWithScore, score: float) -> NodeWithScore:
        node = original.node
        if self.keep_retrieval_score:
            node = node.model_copy()
            node.metadata = {**original.node.metadata, "retrieval_score": original.score}
        return NodeWithScore(node=node, score=score)


__all__ = ["ColrankRerank", "ColrankRetriever", "node_image", "to_colrank_filter"]
