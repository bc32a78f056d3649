"""The engine: FAISS dense recall, then ColBERT MaxSim over stored token embeddings.

A query costs one dense encoding, one FAISS search, one ColBERT query encoding and one
MaxSim over the candidates' *precomputed* token embeddings; documents are never
re-encoded at query time.

Example:
    >>> from colrank import ColrankConfig, ColrankIndex
    >>> index = ColrankIndex(ColrankConfig.offline())              # doctest: +SKIP
    >>> index.add(["ColBERT scores with MaxSim.", "FAISS does recall."])  # doctest: +SKIP
    >>> index.search("what is late interaction?", k=1)[0].text    # doctest: +SKIP
    'ColBERT scores with MaxSim.'
    >>> index.save("my-index"); ColrankIndex.load("my-index")      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from colrank import __version__
from colrank.config import (
    STAND_IN_COLBERT_WEIGHT,
    TRAINED_COLBERT_WEIGHT,
    ColrankConfig,
    SearchConfig,
)
from colrank.errors import (
    CorruptIndexError,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidFilterError,
    InvalidInputError,
    UnknownIdError,
)
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.rank.cross_encoder import CrossEncoderScorer
from colrank.rank.fusion import calibrated, interpolate, rrf
from colrank.recall.candidates import Recall, bm25_share, from_bm25, from_dense, fuse_hybrid
from colrank.rerank.cache import TokenCache, content_key
from colrank.rerank.maxsim import maxsim_flat
from colrank.results import CandidateScores, Document, Hit
from colrank.store.filters import Filter
from colrank.store.local.dense_index import DenseIndex
from colrank.store.local.docstore import DocStore, StoredDoc
from colrank.store.local.lexical_index import BM25Index
from colrank.store.local.snapshots import (
    commit_manifest,
    current_snapshot,
    read_manifest,
    verify_files,
    write_snapshot,
)
from colrank.store.local.token_store import TokenStore
from colrank.validation import (
    check_candidates,
    check_ids,
    check_k,
    check_metadatas,
    check_queries,
    check_query,
    check_texts,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class _Candidates:
    """One query's first-stage candidates and their ColBERT scores (same order).

    ``colbert`` is the MaxSim sum; ``colbert_mean`` the same per query token (the
    calibrated fusion's fixed-scale ColBERT score).
    """

    recall: Recall
    colbert: np.ndarray
    colbert_mean: np.ndarray


def _opt(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


class ColrankIndex:
    """A searchable, persistent ColBERT-reranked index. One object serves every face.

    Args:
        config: models, device, batching, index and storage settings
            (default: :meth:`ColrankConfig.from_env`).
        dense_encoder: an already loaded dense encoder (overrides the config's model).
        colbert_encoder: an already loaded ColBERT encoder (overrides the config's model).
    """

    def __init__(
        self,
        config: ColrankConfig | None = None,
        *,
        dense_encoder: DenseEncoder | None = None,
        colbert_encoder: ColbertEncoder | None = None,
    ) -> None:
        self.config = config or ColrankConfig.from_env()
        self._dense_encoder = dense_encoder
        self._colbert_encoder = colbert_encoder
        self._dense_index: DenseIndex | None = None
        self._tokens: TokenStore | None = None
        self._bm25: BM25Index | None = None
        self._docs = DocStore()
        self._next_iid = 0
        self._expected_dims: dict[str, int] = {}
        self._lock = threading.RLock()
        self.last_timings: dict[str, float] = {}
        """Seconds per stage of the most recent search (for profiling; not thread-safe)."""
        self._rerank_cache = TokenCache(self.config.rerank_cache_size)
        self._dense_cache = TokenCache(self.config.rerank_cache_size, dtype="float32")

    # ---------------------------------------------------------------- models
    @property
    def dense_encoder(self) -> DenseEncoder:
        """The dense (recall) encoder, loaded on first use."""
        if self._dense_encoder is None:
            self._dense_encoder = DenseEncoder.load(
                self.config.models.dense_model, self.config.runtime
            )
        self._check_dim("dense", self._dense_encoder.dim)
        return self._dense_encoder

    @property
    def colbert_encoder(self) -> ColbertEncoder:
        """The ColBERT (rerank) encoder, loaded on first use."""
        if self._colbert_encoder is None:
            models = self.config.models
            self._colbert_encoder = ColbertEncoder.load(
                models.colbert_model,
                self.config.runtime,
                query_length=models.query_length,
                document_length=models.document_length,
            )
        self._check_dim("colbert", self._colbert_encoder.dim)
        return self._colbert_encoder

    def _check_dim(self, kind: str, dim: int) -> None:
        expected = self._expected_dims.get(kind)
        if expected is not None and expected != dim:
            raise DimensionMismatchError(
                f"this index was built with a {kind} model of dimension {expected}, but the "
                f"loaded {kind} model gives {dim}; load it with the model it was built with "
                "(see its manifest.json) or rebuild the index."
            )

    # ------------------------------------------------------------------ info
    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self._docs.iids_for([doc_id]))

    def stats(self) -> dict[str, Any]:
        """Sizes of the index: documents, stored tokens, bytes, codec, dimensions."""
        if self._dense_index is None or self._tokens is None:
            return {"documents": 0}
        tokens = self._tokens
        return {
            "documents": len(self),
            "tokens": tokens.n_tokens,
            "token_bytes": tokens.nbytes,
            "bytes_per_token": tokens.codec.width,
            "codec": tokens.codec.name,
            "pool_factor": self.config.token_store.pool_factor,
            "colbert_dim": tokens.dim,
            "dense_dim": self._dense_index.dim,
            "dense_index": self._dense_index.kind,
        }

    def ids(self) -> list[str]:
        """Every document id, in insertion order."""
        return self._docs.ids()

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Stored documents by id, in the given order."""
        iids = self._iids_of(ids)
        return [Document(d.text, d.id, d.metadata) for d in self._docs.get(iids)]

    # ---------------------------------------------------------------- writes
    def add(
        self,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
        *,
        encode_texts: Sequence[str] | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        """Encode and index documents; all or nothing.

        Args:
            texts: document texts (non-empty strings), stored and returned in hits.
            metadatas: one JSON-serialisable dict per text.
            ids: unique string ids (default: random UUIDs).
            encode_texts: what to encode instead of ``texts`` (same length), e.g. the
                text with metadata prepended, as LlamaIndex embeds nodes.
            progress: show progress bars (default: the config's ``show_progress``).

        Returns:
            The ids of the added documents.
        """
        texts = check_texts(texts)
        metas = check_metadatas(metadatas, len(texts))
        doc_ids = (
            check_ids(ids, len(texts)) if ids is not None else [uuid.uuid4().hex for _ in texts]
        )
        to_encode = texts if encode_texts is None else check_texts(encode_texts)
        if len(to_encode) != len(texts):
            raise InvalidInputError("encode_texts must have one entry per text")
        with self._lock:
            clash = self._docs.iids_for(doc_ids)
            if clash:
                raise DuplicateIdError(
                    f"ids already in the index: {sorted(clash)[:5]}; delete them first to replace"
                )
            vectors = self.dense_encoder.encode(to_encode, progress=progress)
            token_sets = self.colbert_encoder.encode_documents(
                to_encode, progress=progress, pool_factor=self.config.token_store.pool_factor
            )
            self._ensure_stores(vectors.shape[1], token_sets[0].shape[1])
            iids = np.arange(self._next_iid, self._next_iid + len(texts), dtype=np.int64)
            self._next_iid += len(texts)  # ids are never reused, even after a failed add
            dense_index, tokens = self._stores()
            done: list[str] = []
            try:
                dense_index.add(iids, vectors)
                done.append("dense")
                tokens.add(iids.tolist(), token_sets)
                done.append("tokens")
                self._docs.add(iids.tolist(), doc_ids, texts, metas)
            except BaseException:
                if "dense" in done:
                    dense_index.remove(iids)
                if "tokens" in done:
                    tokens.delete(iids.tolist())
                raise
            if self._bm25 is not None and not self._bm25.stale:
                try:  # incremental: only the new documents are tokenized
                    self._bm25.add(iids, texts)
                except Exception:
                    logger.exception("BM25 update failed; it will be rebuilt on next use")
                    self._bm25.stale = True
        return doc_ids

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id; every id must exist (nothing is removed otherwise)."""
        if isinstance(ids, str):
            raise InvalidInputError("ids must be a list of strings (wrap a single id in a list)")
        with self._lock:
            iids = self._iids_of(ids)
            if not iids:
                return
            dense_index, tokens = self._stores()
            dense_index.remove(np.asarray(iids, dtype=np.int64))
            tokens.delete(iids)
            self._docs.delete(iids)
            if self._bm25 is not None and not self._bm25.stale:
                self._bm25.delete(iids)

    def recode_tokens(
        self, codec: str | None = None, pool_factor: int = 1, *, progress: bool | None = None
    ) -> None:
        """Rewrite the stored token embeddings with another codec and/or token pooling.

        No document is re-encoded: the stored vectors are decoded, optionally pooled
        (PyLate's hierarchical pooling, as at indexing), and encoded with the new codec.
        Lossy steps compound: start from float16/float32 storage for the best result.

        Example:
            >>> index.recode_tokens("int8", pool_factor=2)  # doctest: +SKIP
        """
        check_k(pool_factor, "pool_factor")
        with self._lock:
            _, old = self._stores()
            new = TokenStore(old.dim, codec or old.codec.name)
            ids = old.ids
            show = self.config.runtime.show_progress if progress is None else progress
            step = 2048
            with tqdm(total=len(ids), desc="Recoding tokens", disable=not show) as bar:
                for start in range(0, len(ids), step):
                    part = ids[start : start + step].tolist()
                    docs = old.get(part)
                    if pool_factor > 1:
                        docs = self.colbert_encoder.pool(docs, pool_factor)
                    new.add(part, docs)
                    bar.update(len(part))
            self._tokens = new
            store_cfg = self.config.token_store.model_copy(
                update={
                    "codec": new.codec.name,
                    "pool_factor": self.config.token_store.pool_factor * pool_factor,
                }
            )
            self.config = self.config.model_copy(update={"token_store": store_cfg})

    def reencode_tokens(self, colbert_model: str, *, progress: bool | None = None) -> None:
        """Switch the reranker: re-encode every stored document with another ColBERT.

        The dense index, BM25 and the documents stay as they are (e.g. after
        ``colrank finetune``). Documents are encoded from their stored text, with the
        index's token codec and pooling.
        """
        models = self.config.models.model_copy(update={"colbert_model": colbert_model})
        encoder = ColbertEncoder.load(
            colbert_model,
            self.config.runtime,
            query_length=models.query_length,
            document_length=models.document_length,
        )
        with self._lock:
            _, old = self._stores()
            iids = old.ids.tolist()
            texts = [d.text for d in self._docs.get(iids)]
            tokens = encoder.encode_documents(
                texts, progress=progress, pool_factor=self.config.token_store.pool_factor
            )
            new = TokenStore(encoder.dim, self.config.token_store.codec)
            new.add(iids, tokens)
            self._tokens = new
            self._colbert_encoder = encoder
            self._expected_dims["colbert"] = encoder.dim
            self._rerank_cache.clear()
            self.config = self.config.model_copy(update={"models": models})

    def _iids_of(self, ids: Sequence[str]) -> list[int]:
        found = self._docs.iids_for(list(ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise UnknownIdError(f"ids not in the index: {missing[:5]}")
        return [found[i] for i in ids]

    def _ensure_stores(self, dense_dim: int, colbert_dim: int) -> None:
        if self._dense_index is None:
            self._dense_index = DenseIndex(dense_dim, self.config.dense_index)
        if self._tokens is None:
            self._tokens = TokenStore(colbert_dim, self.config.token_store.codec)
        self._expected_dims = {"dense": self._dense_index.dim, "colbert": self._tokens.dim}

    def _stores(self) -> tuple[DenseIndex, TokenStore]:
        if self._dense_index is None or self._tokens is None:
            raise InvalidInputError("the index is empty: add documents first")
        return self._dense_index, self._tokens

    # ---------------------------------------------------------------- search
    def search(
        self,
        query: str,
        k: int = 10,
        candidates: int = 100,
        filter: Filter | None = None,  # noqa: A002 - the name users of vector stores expect
        *,
        first_stage: str | None = None,
        rerank_fusion: str | None = None,
    ) -> list[Hit]:
        """Recall ``candidates`` documents, rerank them with ColBERT, return the best ``k``.

        Args:
            query: the question.
            k: results to return.
            candidates: documents the first stage recalls for reranking (>= k).
            filter: metadata filter, e.g. ``{"year": {"$gte": 2020}}`` (see
                :mod:`colrank.store.filters`); applied before the top-k cut.
            first_stage: ``dense``, ``bm25`` or ``hybrid`` (default: ``config.search``).
            rerank_fusion: ``calibrated``, ``none``, ``interpolate`` or ``rrf`` (default:
                ``config.search``, ``calibrated``: see :class:`~colrank.config.SearchConfig`).
        """
        return self.search_many(
            [check_query(query)],
            k=k,
            candidates=candidates,
            filter=filter,
            first_stage=first_stage,
            rerank_fusion=rerank_fusion,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        candidates: int = 100,
        filter: Filter | None = None,  # noqa: A002
        *,
        first_stage: str | None = None,
        rerank_fusion: str | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries, encoding them in one batch."""
        queries = check_queries(queries)
        k = check_k(k)
        candidates = check_candidates(candidates, k)
        strategy = self._strategy(first_stage, rerank_fusion)
        scored = self._score_candidates(queries, candidates, filter, strategy)
        return [self._final_hits(q, c, k, strategy) for q, c in zip(queries, scored, strict=True)]

    def recall(
        self,
        query: str,
        k: int = 10,
        filter: Filter | None = None,  # noqa: A002
        *,
        first_stage: str | None = None,
    ) -> list[Hit]:
        """First stage only (no ColBERT): the top ``k`` by dense, BM25 or hybrid score."""
        k = check_k(k)
        query = check_query(query)
        if len(self) == 0:
            return []
        self.last_timings = {}
        strategy = self._strategy(first_stage, None)
        r = self._recall([query], k, filter, strategy)[0]
        return self._hits(r.iids[:k], r.first[:k], r, colbert=None)

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
        candidates by ColBERT (or a fusion of ColBERT and ``first_stage_scores``).
        """
        queries = check_queries(queries)
        candidates = check_k(candidates, "candidates")
        strategy = self._strategy(first_stage, None)
        out = []
        for c in self._score_candidates(queries, candidates, filter, strategy):
            with self._lock:
                ids = [d.id for d in self._docs.get(c.recall.iids.tolist())]
            r = c.recall
            final = self._final_scores(c, strategy)
            out.append(CandidateScores(ids, r.dense, c.colbert, r.bm25, r.first, final))
        return out

    def _strategy(self, first_stage: str | None, rerank_fusion: str | None) -> SearchConfig:
        update: dict[str, Any] = {}
        if first_stage is not None:
            update["first_stage"] = first_stage
        if rerank_fusion is not None:
            update["rerank_fusion"] = rerank_fusion
        try:
            return SearchConfig.model_validate({**self.config.search.model_dump(), **update})
        except ValueError as exc:
            raise InvalidInputError(f"invalid search option: {exc}") from exc

    def _score_candidates(
        self,
        queries: list[str],
        candidates: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
    ) -> list[_Candidates]:
        if not queries or len(self) == 0:
            return [_Candidates(Recall.empty(), np.zeros(0), np.zeros(0)) for _ in queries]
        self.last_timings = timings = {}
        recalls = self._recall(queries, candidates, filter, strategy)
        with _timed(timings, "colbert_encode"):
            query_tokens = self.colbert_encoder.encode_queries(queries)
        out = []
        for r, q_tokens in zip(recalls, query_tokens, strict=True):
            if len(r.iids) == 0:
                out.append(_Candidates(r, np.zeros(0), np.zeros(0)))
                continue
            with _timed(timings, "token_fetch"), self._lock:
                store = self._stores()[1]
                codes, lengths = store.gather_codes(r.iids.tolist())
            with _timed(timings, "maxsim"):  # decodes the rows block by block, then MaxSim
                best = maxsim_flat(
                    torch.from_numpy(q_tokens),
                    codes,
                    lengths,
                    decode=store.codec.decode,
                    per_token=True,
                )
            out.append(_Candidates(r, *_colbert_scores(best)))
        return out

    def _recall(
        self,
        queries: list[str],
        n: int,
        filter: Filter | None,  # noqa: A002
        strategy: SearchConfig,
    ) -> list[Recall]:
        if filter is not None and not isinstance(filter, Mapping):
            raise InvalidFilterError(f"filter must be a dict, not {type(filter).__name__}")
        timings = self.last_timings
        mode = strategy.first_stage
        allowed = None
        if filter:
            with _timed(timings, "filter"), self._lock:
                allowed = np.asarray(self._docs.matching_iids(filter), dtype=np.int64)
        dense: list[Recall] = []
        vectors = np.zeros((0, 0), dtype=np.float32)
        if mode in ("dense", "hybrid"):
            with _timed(timings, "dense_encode"):
                vectors = self.dense_encoder.encode(queries, progress=False)
            with _timed(timings, "faiss"), self._lock:
                scores, iids = self._stores()[0].search(vectors, n, allowed)
            dense = [from_dense(s, i) for s, i in zip(scores, iids, strict=True)]
            if mode == "dense":
                return dense
        bm25 = self._lexical()
        out = []
        for qi, query in enumerate(queries):
            with _timed(timings, "bm25"), self._lock:  # BM25 changes in place on add/delete
                full, bm25_max = bm25.scores_and_max(query, allowed)
                lexical = from_bm25(*bm25.top(full, n), bm25_max=bm25_max)
                bm25_of_dense = bm25.pick(full, dense[qi].iids) if mode == "hybrid" else None
            if bm25_of_dense is None:
                out.append(lexical)
                continue
            with _timed(timings, "hybrid_fusion"):
                out.append(self._fuse(dense[qi], lexical, vectors[qi], bm25_of_dense, n, strategy))
        return out

    def _fuse(
        self,
        dense: Recall,
        lexical: Recall,
        vector: np.ndarray,
        bm25_of_dense: np.ndarray,
        n: int,
        strategy: SearchConfig,
    ) -> Recall:
        only_lexical = np.setdiff1d(lexical.iids, dense.iids)
        with self._lock:
            exact = self._stores()[0].vectors(only_lexical) @ vector if len(only_lexical) else []
        return fuse_hybrid(
            dense,
            lexical,
            n,
            method=strategy.hybrid_fusion,
            dense_weight=strategy.hybrid_dense_weight,
            bm25_weight=strategy.bm25_weight,
            rrf_k=strategy.rrf_k,
            dense_of=dict(zip(only_lexical.tolist(), np.asarray(exact).tolist(), strict=True)),
            bm25_of=dict(zip(dense.iids.tolist(), bm25_of_dense.tolist(), strict=True)),
        )

    def _lexical(self) -> BM25Index:
        """The BM25 index; built from the document store on first use (then kept up to date)."""
        with self._lock:
            if self._bm25 is None or self._bm25.stale:
                iids, texts = self._docs.all_texts()
                bm25 = BM25Index()
                bm25.add(iids, texts)
                self._bm25 = bm25
            return self._bm25

    def _final_scores(self, c: _Candidates, strategy: SearchConfig) -> np.ndarray:
        """The score the final order is made by (before an optional cross-encoder)."""
        r = c.recall
        if strategy.rerank_fusion == "calibrated":
            return self._calibrated(r.dense, r.bm25_share, c.colbert_mean, strategy)
        if strategy.rerank_fusion == "interpolate":
            weight = 0.5 if strategy.colbert_weight is None else strategy.colbert_weight
            return interpolate(c.colbert, r.first, weight)
        if strategy.rerank_fusion == "rrf":
            return rrf([c.colbert, r.first], k=strategy.rrf_k)
        return c.colbert

    def _final_hits(self, query: str, c: _Candidates, k: int, strategy: SearchConfig) -> list[Hit]:
        r = c.recall
        final = self._final_scores(c, strategy)
        order = np.argsort(-final, kind="stable")
        if not strategy.cross_encoder_model or len(order) == 0:
            top = order[:k]
            return self._hits(r.iids[top], final[top], r, colbert=c.colbert, positions=top)
        top = order[: max(k, strategy.cross_encoder_top)]
        scorer = self._cross_encoder(strategy.cross_encoder_model)
        with _timed(self.last_timings, "cross_encoder"):
            texts = [d.text for d in self._docs.get(r.iids[top].tolist())]
            ce = scorer.score(query, texts).astype(np.float64)
        best = np.argsort(-ce, kind="stable")[:k]
        return self._hits(
            r.iids[top[best]], ce[best], r, colbert=c.colbert, positions=top[best], cross=ce[best]
        )

    def colbert_weight(self, strategy: SearchConfig | None = None) -> float:
        """ColBERT's share of the calibrated score: the configured one, or by the model.

        An untrained stand-in ColBERT (the offline MiniLM) gets
        ``STAND_IN_COLBERT_WEIGHT``, a trained checkpoint ``TRAINED_COLBERT_WEIGHT``.
        """
        strategy = strategy or self.config.search
        if strategy.colbert_weight is not None:
            return strategy.colbert_weight
        if self.colbert_encoder.is_stand_in:
            return STAND_IN_COLBERT_WEIGHT
        return TRAINED_COLBERT_WEIGHT

    def _calibrated(
        self,
        dense: np.ndarray,
        bm25_share: np.ndarray,
        colbert_mean: np.ndarray,
        strategy: SearchConfig,
    ) -> np.ndarray:
        """The default score (see :class:`~colrank.config.SearchConfig`); NaN stages left out."""
        wc = self.colbert_weight(strategy)
        wb = strategy.bm25_weight
        first = calibrated([dense, bm25_share], [1.0 - wb, wb])
        return calibrated([first, colbert_mean], [1.0 - wc, wc]) if wc < 1 else colbert_mean

    def _cross_encoder(self, spec: str) -> CrossEncoderScorer:
        return CrossEncoderScorer.load(spec, self.config.runtime)

    def _hits(
        self,
        iids: np.ndarray,
        scores: np.ndarray,
        recall: Recall,
        *,
        colbert: np.ndarray | None,
        positions: np.ndarray | None = None,
        cross: np.ndarray | None = None,
    ) -> list[Hit]:
        """Hits in the given order; ``positions`` index ``recall`` / ``colbert`` rows."""
        positions = np.arange(len(iids)) if positions is None else positions
        with _timed(self.last_timings, "docstore"), self._lock:
            docs: list[StoredDoc] = self._docs.get(iids.tolist())
        return [
            Hit(
                id=doc.id,
                text=doc.text,
                metadata=doc.metadata,
                score=float(scores[rank - 1]),
                dense_score=_opt(recall.dense[p]),
                rank=rank,
                colbert_score=None if colbert is None else float(colbert[p]),
                bm25_score=_opt(recall.bm25[p]),
                cross_encoder_score=None if cross is None else float(cross[rank - 1]),
            )
            for rank, (p, doc) in enumerate(zip(positions, docs, strict=True), start=1)
        ]

    # ---------------------------------------------------------------- rerank
    def rerank(
        self,
        query: str,
        documents: Sequence[str | Document],
        k: int | None = None,
    ) -> list[Hit]:
        """Rerank documents that come from elsewhere (another retriever, a database).

        ``Hit.score`` is the same quantity as in :meth:`search` (by default the
        calibrated score: dense cosine, BM25 under this index's corpus statistics when
        it has documents, and ColBERT MaxSim per query token), so one threshold serves
        both. A document whose id is in this index with the same text is scored from
        its stored embeddings; others are encoded and cached by content hash
        (``config.rerank_cache_size`` documents). ``Hit.position`` is the document's
        index in ``documents``.

        Args:
            query: the question.
            documents: texts, or :class:`~colrank.results.Document` objects.
            k: results to return (default: all).
        """
        query = check_query(query)
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise InvalidInputError("documents must be a list of strings or Document objects")
        docs = [_as_document(d, i) for i, d in enumerate(documents)]
        if k is not None:
            k = check_k(k)
        if not docs:
            return []
        strategy = self.config.search
        with_fusion = strategy.rerank_fusion == "calibrated"
        token_sets, vectors = self._document_embeddings(docs, dense=with_fusion)
        q_tokens = self.colbert_encoder.encode_queries([query])[0]
        lengths = np.fromiter((len(t) for t in token_sets), dtype=np.int64, count=len(token_sets))
        best = maxsim_flat(
            torch.from_numpy(q_tokens), np.concatenate(token_sets), lengths, per_token=True
        )
        colbert, colbert_mean = _colbert_scores(best)
        dense = bm25 = np.full(len(docs), np.nan)
        scores = colbert
        if with_fusion:
            dense = vectors @ self.dense_encoder.encode([query], progress=False)[0]
            share = np.full(len(docs), np.nan)
            if len(self):
                lexical = self._lexical()
                with self._lock:
                    bm25, bm25_max = lexical.score_texts_and_max(query, [d.text for d in docs])
                share = bm25_share(bm25, bm25_max)
            scores = self._calibrated(dense, share, colbert_mean, strategy)
        order = np.argsort(-scores, kind="stable")[: k or len(docs)]
        return [
            Hit(
                id=docs[j].id,
                text=docs[j].text,
                metadata=dict(docs[j].metadata),
                score=float(scores[j]),
                dense_score=_opt(dense[j]),
                rank=rank,
                position=int(j),
                colbert_score=float(colbert[j]),
                bm25_score=_opt(bm25[j]),
            )
            for rank, j in enumerate(order, start=1)
        ]

    def _document_embeddings(
        self, docs: list[Document], *, dense: bool
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Token sets (and dense vectors when asked) of outside documents.

        Stored embeddings for documents already indexed under their id with the same
        text; the rest are encoded once and cached by content hash.
        """
        stored = self._stored_positions(docs)
        token_sets: list[np.ndarray | None] = [None] * len(docs)
        vectors = np.zeros((len(docs), 0), dtype=np.float32)
        if stored:
            with self._lock:
                dense_index, tokens = self._stores()
                iids = list(stored.values())
                for j, t in zip(stored, tokens.get(iids), strict=True):
                    token_sets[j] = t
                if dense:
                    vectors = np.zeros((len(docs), dense_index.dim), dtype=np.float32)
                    vectors[list(stored)] = dense_index.vectors(np.asarray(iids, dtype=np.int64))
        others = [j for j in range(len(docs)) if token_sets[j] is None]
        if others:
            texts = [docs[j].text for j in others]
            for j, t in zip(others, self._cached(texts, "colbert"), strict=True):
                token_sets[j] = t
            if dense:
                encoded = np.stack(self._cached(texts, "dense"))
                if vectors.shape[1] == 0:
                    vectors = np.zeros((len(docs), encoded.shape[1]), dtype=np.float32)
                vectors[others] = encoded
        return [t for t in token_sets if t is not None], vectors

    def _stored_positions(self, docs: list[Document]) -> dict[int, int]:
        """``{position: internal id}`` of documents indexed under their id with that text."""
        ids = [d.id for d in docs if d.id is not None]
        if not ids or len(self) == 0:
            return {}
        with self._lock:
            found = self._docs.iids_for(ids)
            texts = {d.iid: d.text for d in self._docs.get(list(found.values()))}
        return {
            j: found[d.id]
            for j, d in enumerate(docs)
            if d.id in found and texts[found[d.id]] == d.text
        }

    def _cached(self, texts: list[str], kind: str) -> list[np.ndarray]:
        """Encode texts with the ColBERT or dense encoder, through the content-hash cache.

        A text is returned in the cache's precision also on its first sight, so it
        scores the same every time it is seen.
        """
        cache = self._rerank_cache if kind == "colbert" else self._dense_cache
        keys = [content_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        for key in keys:
            value = cache.get(key)
            if value is not None:
                found[key] = value
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first_text = dict(zip(keys, texts, strict=True))
            batch = [first_text[key] for key in missing]
            if kind == "colbert":
                encoded = self.colbert_encoder.encode_documents(batch, progress=False)
            else:
                encoded = list(self.dense_encoder.encode(batch, progress=False))
            for key, value in zip(missing, encoded, strict=True):
                found[key] = np.asarray(value, dtype=cache.dtype).astype(np.float32)
                cache.put(key, found[key])
        return [np.asarray(found[key], dtype=np.float32) for key in keys]

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the index atomically to ``path`` (a directory); returns the path.

        A crash mid-save leaves the previously saved index intact.
        """
        root = Path(path)
        with self._lock:
            dense_index, tokens = self._stores()
            manifest = {
                "format": "colrank-index",
                "format_version": FORMAT_VERSION,
                "colrank_version": __version__,
                "saved_at": datetime.now(timezone.utc).isoformat(),
                "config": self.config.to_manifest(),
                "dense_model": self.dense_encoder.name,
                "colbert_model": self.colbert_encoder.name,
                "dense_dim": dense_index.dim,
                "colbert_dim": tokens.dim,
                "documents": len(self._docs),
                "next_internal_id": self._next_iid,
            }
            with write_snapshot(root) as snapshot:
                files = dense_index.save(snapshot)
                files += tokens.save(snapshot)
                files += self._docs.save(snapshot)
                files += self._lexical().save(snapshot)  # always: the default search needs it
                commit_manifest(snapshot, manifest, files)
        logger.info("saved %d documents to %s", len(self), root)
        return root

    @classmethod
    def load(
        cls,
        path: str | Path,
        config: ColrankConfig | None = None,
        *,
        dense_encoder: DenseEncoder | None = None,
        colbert_encoder: ColbertEncoder | None = None,
        verify: bool = True,
        mmap: bool = True,
    ) -> ColrankIndex:
        """Open a saved index.

        Args:
            path: the index directory.
            config: settings to use (default: the saved ones, with this machine's
                ``COLRANK_DEVICE`` / ``COLRANK_DTYPE`` runtime overrides).
            dense_encoder: an already loaded dense encoder (its dimension must match).
            colbert_encoder: an already loaded ColBERT encoder (its dimension must match).
            verify: check every file's SHA-256 (sizes are always checked).
            mmap: keep token embeddings on disk, memory-mapped.
        """
        snapshot = current_snapshot(Path(path))
        manifest = read_manifest(snapshot)
        if manifest.get("format") != "colrank-index":
            raise CorruptIndexError(f"{snapshot} does not hold a colrank index")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise CorruptIndexError(
                f"index format {manifest.get('format_version')} is not supported by this "
                f"colrank (format {FORMAT_VERSION}); rebuild the index"
            )
        verify_files(snapshot, manifest, checksums=verify)
        if config is None:
            saved = ColrankConfig.from_manifest(manifest["config"])
            runtime = ColrankConfig.from_env().runtime
            config = saved.model_copy(update={"runtime": runtime})
        index = cls(config, dense_encoder=dense_encoder, colbert_encoder=colbert_encoder)
        index._dense_index = DenseIndex.load(snapshot, config.dense_index)
        index._tokens = TokenStore.load(snapshot, mmap=mmap)
        index._docs = DocStore.load(snapshot)
        index._bm25 = BM25Index.load(snapshot)
        index._next_iid = int(manifest["next_internal_id"])
        index._expected_dims = {
            "dense": int(manifest["dense_dim"]),
            "colbert": int(manifest["colbert_dim"]),
        }
        index._check_consistency(manifest)
        for kind, encoder in (("dense", dense_encoder), ("colbert", colbert_encoder)):
            if encoder is not None:
                index._check_dim(kind, encoder.dim)
        return index

    def _check_consistency(self, manifest: dict[str, Any]) -> None:
        dense_index, tokens = self._stores()
        counts = {
            "manifest": int(manifest["documents"]),
            "documents": len(self._docs),
            "dense": len(dense_index),
            "tokens": len(tokens),
        }
        if len(set(counts.values())) != 1:
            raise CorruptIndexError(f"index parts disagree on the document count: {counts}")
        if dense_index.dim != int(manifest["dense_dim"]) or tokens.dim != int(
            manifest["colbert_dim"]
        ):
            raise CorruptIndexError("index parts disagree with the manifest on dimensions")


def _colbert_scores(best: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MaxSim sum and per-query-token mean from ``(N, Lq)`` per-token maxima."""
    best = best.astype(np.float64)
    return best.sum(axis=1), best.mean(axis=1)


def _as_document(item: str | Document | Mapping[str, Any], position: int) -> Document:
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, str):
        doc = Document(item)
    elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
        doc = Document(item["text"], item.get("id"), dict(item.get("metadata") or {}))
    else:
        raise InvalidInputError(
            f"documents[{position}] is a {type(item).__name__}; pass strings or colrank.Document"
        )
    if not isinstance(doc.text, str):
        raise InvalidInputError(f"documents[{position}].text is not a string")
    return doc


__all__ = ["ColrankIndex"]
