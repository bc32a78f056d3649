"""BM25 top-k in SQL whose cost does not grow with the collection.

Scoring every document that holds a query term costs in proportion to the terms'
document frequencies, which grow with the collection. Instead:

1. each query term's postings are read best-first from an index by ``(term, impact
   DESC)``, at most ``depth`` of them, with their term frequency and document length
   (on a spread collection every shard answers at once and the first ``depth`` per term
   are kept over all shards). A posting's *impact* is its BM25 weight under a reference
   length fixed when the collection was made;
2. each listed document gets a partial score, summed in SQL: what the terms whose lists
   hold it add, under the collection's statistics;
3. the ``3 x n`` documents with the best partial scores get their other terms read by
   primary key, so their scores are **exact** BM25, and the best ``n`` are returned.

The work is bounded by ``terms x depth + 3 x n x terms`` index reads whatever the
collection's size. A document in no term's list, or outside the ``3 x n`` best partial
scores, is not returned; with ``depth`` above every query term's frequency and few
candidates the result is exhaustive BM25 (the benchmark measures how much of the
exhaustive top-100 the default keeps). The answers are the same on one server and on a
spread collection.

Example:
    >>> weights = {"cell": 1.2, "wall": 0.4}
    >>> sql, params = candidates_sql([("d", "t")], weights, 9.5, 100, 30, None, [])
    >>> sql.count("LIMIT %s"), params[2:]
    (3, ['cell', 100, 'wall', 100, 100, 100, 9.5, 30])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from colrank.store.bm25 import saturation, saturation_sql

Rows = Callable[..., list[tuple[Any, ...]]]

CANDIDATES_PER_RESULT = 3
"""Documents rescored exactly per result asked for (by their partial score)."""


def candidates_sql(
    sources: Sequence[tuple[str, str]],
    weights: dict[str, float],
    average_length: float,
    depth: int,
    wanted: int,
    where: str | None,
    params: Sequence[Any],
) -> tuple[str, list[Any]]:
    """One statement: the ``wanted`` documents with the best partial BM25.

    Each term's first ``depth`` postings by impact are read from every source, and the
    first ``depth`` per term kept over all of them; a document's partial score is what
    the terms whose lists hold it add. Rows: ``(iid, partial score, cut lists holding it,
    cut lists)``: a document held by every cut list (a term with ``depth`` postings or
    more) has its exact score already. ``sources`` are ``(documents, postings)`` table
    pairs: one on one server, one per shard on a spread collection (each a foreign
    table, so its ``ORDER BY ... LIMIT`` runs on its shard). ``where`` filters on the
    documents' metadata.
    """
    names = sorted(weights)
    parts, values = [], []
    for term in names:
        for docs, postings in sources:
            join = f" JOIN {docs} d ON d.iid = p.iid" if where else ""
            extra = f" AND ({where})" if where else ""
            parts.append(
                f"(SELECT p.term, p.iid, p.impact, p.tf, p.n_terms FROM {postings} p{join} "
                f"WHERE p.term = %s{extra} ORDER BY p.impact DESC, p.iid LIMIT %s)"
            )
            values.extend([term, *(params if where else []), depth])
    partial = f"q.w * {saturation_sql('k.tf', 'k.n_terms', '%s')}"
    sql = (
        "WITH q(term, w) AS (SELECT * FROM unnest(%s::text[], %s::float8[])), "
        f"listed AS ({' UNION ALL '.join(parts)}), "
        "ranked AS (SELECT *, row_number() OVER (PARTITION BY term ORDER BY impact DESC, iid) "
        "AS r, count(*) OVER (PARTITION BY term) >= %s AS cut FROM listed), "
        "kept AS (SELECT * FROM ranked WHERE r <= %s) "
        f"SELECT k.iid, sum({partial}), count(*) FILTER (WHERE k.cut), "
        "(SELECT count(DISTINCT term) FROM kept WHERE cut) "
        "FROM kept k JOIN q ON q.term = k.term "
        "GROUP BY k.iid ORDER BY 2 DESC, k.iid LIMIT %s"
    )
    head = [names, [weights[t] for t in names]]
    return sql, [*head, *values, depth, depth, float(average_length), wanted]


def top_k(
    rows: Rows,
    postings: str,
    candidates: Sequence[tuple[int, float, int, int]],
    weights: dict[str, float],
    average_length: float,
    n: int,
    also: Sequence[int] = (),
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """The best ``n`` candidates ``(iid, exact score)``, and the exact scores of ``also``.

    ``candidates``: the rows of :func:`candidates_sql`. Those whose partial score is not
    yet exact get their missing terms read by primary key, as does ``also``.
    """
    names = sorted(weights)
    exact = {int(i): float(s) for i, s, held, cut in candidates if held == cut}
    ask = [int(r[0]) for r in candidates if int(r[0]) not in exact]
    read = _exact(rows, postings, names, weights, average_length, [*ask, *also])
    scores = {**exact, **{i: read[i] for i in ask}}
    ranked = sorted(scores.items(), key=lambda p: (-p[1], p[0]))
    return ranked[:n], {int(i): read[int(i)] for i in also}


def _exact(
    rows: Rows,
    postings: str,
    names: list[str],
    weights: dict[str, float],
    average_length: float,
    iids: Sequence[int],
) -> dict[int, float]:
    """Exact BM25 of ``iids`` (0 for none of the terms), read by primary key."""
    scores = {int(i): 0.0 for i in iids}
    if not scores:
        return scores
    found = rows(
        f"SELECT iid, term, tf, n_terms FROM {postings} WHERE term = ANY(%s) AND iid = ANY(%s)",
        [names, sorted(scores)],
        binary=True,
    )
    parts: dict[int, list[tuple[str, float]]] = {}
    for doc, name, tf, length in found:
        part = weights[name] * saturation(tf, length, average_length)
        parts.setdefault(doc, []).append((name, part))
    for doc, terms in parts.items():  # summed in term order: the same on every layout
        scores[doc] = float(sum(p for _, p in sorted(terms)))
    return scores


__all__ = ["CANDIDATES_PER_RESULT", "candidates_sql", "top_k"]
