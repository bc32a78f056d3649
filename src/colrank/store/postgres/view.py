"""A read view over a PostgreSQL collection: one read-only REPEATABLE READ transaction.

Dense recall is one ``ORDER BY dense <#> query LIMIT n`` per query (per shard on a
spread collection, each run on its shard) with the filter in the same ``WHERE``
(pgvector's HNSW with iterative scans keeps filling ``n`` under a filter; ``exact=True``
turns index scans off for an exhaustive search). BM25 reads each query term's postings
best-first and scores the candidates exactly (:mod:`colrank.store.postgres.lexical`).

Example:
    >>> with backend.read() as view:                  # doctest: +SKIP
    ...     scores, iids = view.dense_search(vectors, 100, {"lang": "en"})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from colrank.store.base import LexicalResult, StoredDoc
from colrank.store.bm25 import query_idf, texts_bm25
from colrank.store.codecs import Codec
from colrank.store.filters import Filter, check_kinds
from colrank.store.postgres.filters import compile_pg_filter, pg_kind_probe
from colrank.store.postgres.hnsw import AUTO_EF_SEARCH_SQL, EF_SEARCH_MAX
from colrank.store.postgres.lexical import CANDIDATES_PER_RESULT, candidates_sql, top_k

if TYPE_CHECKING:
    from colrank.store.postgres.backend import PostgresBackend


class PostgresReadView:
    """A :class:`~colrank.store.base.ReadView` inside one database snapshot."""

    def __init__(
        self, backend: PostgresBackend, conn: Any, manifest: dict[str, Any] | None
    ) -> None:
        self._b = backend
        self._conn = conn
        self._m = manifest
        self._t = backend.tables
        self.codec: Codec | None = backend.codec(conn, manifest) if manifest else None
        self._checked: list[Filter] = []  # filters whose value kinds were checked
        #: whether this snapshot is read on a hot standby (else on the primary)
        self.on_standby = conn.info.parameter_status("in_hot_standby") == "on"
        shards = (manifest or {}).get("shards") or []
        self._sources = [(self._t.docs_on(i), self._t.terms_on(i)) for i in range(len(shards))]
        if not shards:
            self._sources = [(self._t.docs, self._t.terms)]

    def _where(self, filter: Filter | None) -> tuple[str, list[Any]]:  # noqa: A002
        """The filter as SQL, after refusing value kinds the collection never stores."""
        if filter and not any(f is filter for f in self._checked):
            check_kinds(filter, self._holds)
            self._checked.append(filter)
        return compile_pg_filter(filter)

    def _holds(self, field: str, kinds: tuple[str, ...]) -> bool:
        sql, params = pg_kind_probe(self._t.docs, field, kinds)
        return bool(self._rows(sql, params))

    def _rows(
        self, sql: str, params: Sequence[Any] = (), *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        # binary results for vectors and bytea: no text parsing or hex decoding
        return self._conn.execute(sql, params, binary=binary).fetchall()

    def count(self) -> int:
        """Live documents."""
        if self._m is None:
            return 0
        return int(self._rows(f"SELECT n_docs FROM {self._t.stats}")[0][0])

    def ids(self, filter: Filter | None = None) -> list[str]:  # noqa: A002
        """User ids in insertion order; only those matching ``filter`` if given."""
        if self._m is None:
            return []
        where, params = self._where(filter)
        sql = f"SELECT id FROM {self._t.docs} WHERE {where} ORDER BY iid"
        return [r[0] for r in self._rows(sql, params)]

    def iids_for(self, ids: Sequence[str]) -> dict[str, int]:
        """User id -> internal id for stored ids."""
        if self._m is None or not ids:
            return {}
        sql = f"SELECT id, iid FROM {self._t.docs} WHERE id = ANY(%s)"
        return dict(self._rows(sql, [list(ids)]))

    def documents(self, iids: Sequence[int]) -> list[StoredDoc]:
        """Stored documents, in the given order."""
        wanted = [int(i) for i in iids]
        if not wanted:
            return []
        sql = f"SELECT iid, id, text, metadata FROM {self._t.docs} WHERE iid = ANY(%s)"
        found = {r[0]: StoredDoc(r[0], r[1], r[2], dict(r[3])) for r in self._rows(sql, [wanted])}
        return [found[i] for i in wanted]

    def dense_search(
        self,
        vectors: np.ndarray,
        n: int,
        filter: Filter | None,  # noqa: A002
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` inner products per query among the matching documents."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        scores = np.full((len(vectors), n), -np.inf, dtype=np.float32)
        found = np.full((len(vectors), n), -1, dtype=np.int64)
        if self._m is None:
            return scores[:, :0], found[:, :0]
        if vectors.shape[1] != self._m["dense_dim"]:
            from colrank.errors import DimensionMismatchError

            raise DimensionMismatchError(
                f"query vectors have dimension {vectors.shape[1]}, the collection "
                f"{self._m['dense_dim']}"
            )
        self._settings(n, filtered=bool(filter))
        where, params = self._where(filter)
        cast = self._m["dense_type"]
        # one on one server; one per shard on a spread collection, each run there and all
        # at once (an unordered UNION ALL of foreign scans runs them asynchronously)
        sql = " UNION ALL ".join(
            f"(SELECT iid, dense <#> %s::{cast} AS d FROM {docs} WHERE {where} ORDER BY d LIMIT %s)"
            for docs, _ in self._sources
        )
        for q, vector in enumerate(vectors):
            one = [_literal(vector), *params, n]
            rows = sorted(self._rows(sql, one * len(self._sources)), key=lambda r: (r[1], r[0]))
            for j, (iid, distance) in enumerate(rows[:n]):  # iterative scans may relax order
                found[q, j], scores[q, j] = iid, -distance
        width = int((found >= 0).sum(axis=1).max(initial=0))
        return scores[:, :width], found[:, :width]

    def _settings(self, n: int, *, filtered: bool) -> None:
        """This transaction's search settings, sent in one round trip.

        ``ef_search`` (at least ``n``, at most pgvector's 1000) is the backend's, or else
        follows the collection's size (:data:`~colrank.store.postgres.hnsw.AUTO_EF_SEARCH_SQL`).
        """
        if self._b.ef_search is None:
            size = AUTO_EF_SEARCH_SQL.format(n=f"(SELECT n_docs FROM {self._t.stats})")
            ef = f"least({EF_SEARCH_MAX}, greatest({int(n)}, {size}))"
        else:
            ef = str(int(min(max(self._b.ef_search, n), EF_SEARCH_MAX)))
        statements = [f"SELECT set_config('hnsw.ef_search', ({ef})::text, true)"]
        if filtered:  # keep scanning the graph until n matching rows are found
            statements.append("SET LOCAL hnsw.iterative_scan = relaxed_order")
        if self._b.exact:
            statements.append("SET LOCAL enable_indexscan = off")
        self._conn.execute("; ".join(statements))

    def dense_vectors(self, iids: Sequence[int]) -> np.ndarray:
        """Stored dense vectors (float32)."""
        wanted = [int(i) for i in iids]
        dim = 0 if self._m is None else int(self._m["dense_dim"])
        if not wanted:
            return np.zeros((0, dim), dtype=np.float32)
        sql = f"SELECT iid, dense::vector FROM {self._t.docs} WHERE iid = ANY(%s)"
        found = {
            r[0]: np.asarray(r[1].to_numpy(), dtype=np.float32)
            for r in self._rows(sql, [wanted], binary=True)
        }
        return np.stack([found[i] for i in wanted])

    def _query_idf(self, query: str) -> tuple[list[tuple[str, float]], float]:
        """``(token, idf)`` of the query's known tokens (repeats kept), and the average length.

        One round trip: the collection's statistics and the terms' document frequencies.
        """
        tokens = self._b._bm25.tokenize([query])[0]
        t = self._t
        rows = self._rows(
            f"SELECT s.n_docs, s.total_terms, f.term, f.df FROM {t.stats} s "
            f"LEFT JOIN {t.df} f ON f.term = ANY(%s)",
            [list(set(tokens))],
        )
        n_docs, total = rows[0][0], rows[0][1]
        if not tokens or not n_docs:
            return [], 0.0
        df = {r[2]: r[3] for r in rows if r[2] is not None}
        return query_idf(tokens, df.get, n_docs), total / n_docs

    def lexical_search(
        self,
        query: str,
        n: int,
        filter: Filter | None,  # noqa: A002
        also: np.ndarray | None = None,
    ) -> LexicalResult:
        """BM25 top-``n`` among the matching documents, and the scores of ``also``.

        Each term's postings are read best-first up to ``max(n, bm25_depth)``; the top
        ``n`` of those documents, and ``also``, get exact scores
        (:mod:`colrank.store.postgres.lexical`).
        """
        also_ids = [] if also is None else [int(i) for i in also]
        pairs, avg = self._query_idf(query) if self._m is not None else ([], 0.0)
        top = float(sum(idf for _, idf in pairs))
        if not pairs:
            unscored = (
                np.zeros(len(also_ids)) if self._m is not None else np.full(len(also_ids), np.nan)
            )
            return LexicalResult(np.zeros(0, np.float32), np.zeros(0, np.int64), top, unscored)
        weights: dict[str, float] = {}
        for term, idf in pairs:  # a term repeated in the query counts as often
            weights[term] = weights.get(term, 0.0) + idf
        where, params = self._where(filter) if filter else (None, [])
        depth = max(n, self._b.bm25_depth)
        wanted = CANDIDATES_PER_RESULT * n
        sql, values = candidates_sql(self._sources, weights, avg, depth, wanted, where, params)
        found = self._rows(sql, values, binary=True)
        best, also_scores = top_k(self._rows, self._t.terms, found, weights, avg, n, also_ids)
        return LexicalResult(
            np.array([s for _, s in best], dtype=np.float32),
            np.array([i for i, _ in best], dtype=np.int64),
            top,
            np.array([also_scores[i] for i in also_ids], dtype=np.float64),
        )

    def lexical_score_texts(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """BM25 of outside texts under this collection's statistics."""
        pairs, avg = self._query_idf(query) if self._m is not None else ([], 0.0)
        top = float(sum(idf for _, idf in pairs))
        if not pairs or not texts:
            return np.zeros(len(texts)), top
        return texts_bm25(pairs, self._b._bm25.tokenize(texts), avg), top

    def token_codes(self, iids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Stored token codes back to back, and lengths (fetched by primary key)."""
        from colrank.errors import UnknownIdError

        wanted = [int(i) for i in iids]
        width = 0 if self.codec is None else self.codec.width
        if not wanted:
            return np.zeros((0, width), np.uint8), np.zeros(0, np.int64)
        sql = f"SELECT iid, tokens, n_tokens FROM {self._t.docs} WHERE iid = ANY(%s)"
        found = {r[0]: (r[1], r[2]) for r in self._rows(sql, [wanted], binary=True)}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise UnknownIdError(f"no token embeddings for internal ids {missing[:5]}")
        lengths = np.array([found[i][1] for i in wanted], dtype=np.int64)
        out = np.empty((int(lengths.sum()), width), dtype=np.uint8)  # one copy, writable
        start = 0
        for i, n in zip(wanted, lengths.tolist(), strict=True):
            out[start : start + n] = np.frombuffer(found[i][0], dtype=np.uint8).reshape(n, width)
            start += n
        return out, lengths

    def decode(self, codes: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Codes -> vectors of ``dtype``."""
        assert self.codec is not None
        return self.codec.decode(codes, dtype)

    def token_embeddings(self, iids: Sequence[int]) -> list[np.ndarray]:
        """Decoded token embeddings per document."""
        codes, lengths = self.token_codes(iids)
        if not len(lengths):
            return []
        flat = self.decode(codes).numpy()
        return np.split(flat, np.cumsum(lengths)[:-1])


def _literal(vector: np.ndarray) -> str:
    """A vector as pgvector's text form (cast to the column's type in SQL)."""
    return "[" + ",".join(f"{x:.9g}" for x in vector.tolist()) + "]"


__all__ = ["PostgresReadView"]
