"""BM25 top-k in SQL whose cost does not grow with the collection.

Scoring every document that holds a query term costs in proportion to the terms'
document frequencies, which grow with the collection. Instead each query term's postings
are read best-first from an index by ``(term, impact DESC)``, at most ``depth`` of them
(one statement for all terms; on a spread collection every shard answers at once). A
posting's *impact* is its BM25 weight under a reference length fixed when the collection
was made; its weight under today's average length is at most ``impact x max(1, avg /
reference)``, which bounds what a term adds to a document missing from its list.

From those lists (a one-pass threshold algorithm):

- every listed document gets a lower bound (what its listed terms add, exactly) and an
  upper bound (plus each other term's bound, zero for a term whose list is complete);
- documents whose upper bound falls below the ``n``-th best lower bound cannot rank;
- the others still unsure get their missing terms read by primary key,

so every returned score is **exact** BM25 under the collection's statistics, and the
work is bounded by ``terms x depth`` whatever the collection's size. A document in no
term's list is not considered; with ``depth`` above every query term's frequency the
result is exhaustive BM25. On a spread collection the first ``depth`` per term are kept
over all shards, so the answers are those of one server holding everything.

Example:
    >>> sql, params = candidates_sql([("d", "t")], ["cell", "wall"], 100, None, [])
    >>> sql.count("LIMIT"), params
    (2, ['cell', 100, 'wall', 100])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from colrank.store.bm25 import K1, B

Rows = Callable[..., list[tuple[Any, ...]]]


def candidates_sql(
    sources: Sequence[tuple[str, str]],
    terms: Sequence[str],
    depth: int,
    where: str | None,
    params: Sequence[Any],
) -> tuple[str, list[Any]]:
    """One statement: each term's top ``depth`` postings by impact, from every source.

    ``sources`` are ``(documents, postings)`` table pairs: one on one server, one per
    shard on a spread collection (each a foreign table, so its ``ORDER BY ... LIMIT`` runs
    on its shard, and an unordered ``UNION ALL`` of foreign scans runs them at once).
    ``where`` filters on the documents' metadata. Rows: ``(term, iid, impact, tf,
    n_terms)``.
    """
    parts, values = [], []
    for term in terms:
        for docs, postings in sources:
            join = f" JOIN {docs} d ON d.iid = p.iid" if where else ""
            extra = f" AND ({where})" if where else ""
            parts.append(
                f"(SELECT p.term, p.iid, p.impact, p.tf, p.n_terms FROM {postings} p{join} "
                f"WHERE p.term = %s{extra} ORDER BY p.impact DESC, p.iid LIMIT %s)"
            )
            values.extend([term, *(params if where else []), depth])
    return " UNION ALL ".join(parts), values


class Scorer:
    """Exact BM25 contributions under the collection's statistics.

    Args:
        weights: each query term's IDF times its count in the query.
        average_length: the collection's average document length (in terms).
    """

    def __init__(self, weights: dict[str, float], average_length: float) -> None:
        self.weights = weights
        self.average = average_length

    def part(self, term: str, tf: float, length: float) -> float:
        """What ``term`` adds to a document where it occurs ``tf`` times."""
        norm = K1 * (1 - B + B * length / self.average)
        return self.weights[term] * tf / (tf + norm)


def top_k(
    rows: Rows,
    postings: str,
    lists: list[tuple[str, int, float, float, int]],
    scorer: Scorer,
    depth: int,
    n: int,
    reference_length: float,
    also: Sequence[int] = (),
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """The best ``n`` ``(iid, exact score)`` among the listed documents, and ``also``'s.

    ``lists``: the rows of :func:`candidates_sql`. ``also`` are documents whose exact
    score is wanted whatever their rank (0 for none of the terms).
    """
    by_term: dict[str, list[tuple[float, int, float, int]]] = {}
    for term, iid, impact, tf, length in lists:
        by_term.setdefault(term, []).append((-float(impact), int(iid), float(tf), int(length)))
    slack = max(1.0, scorer.average / reference_length)
    known: dict[int, dict[str, float]] = {}
    bounds: dict[str, float] = {}
    for term, listed_rows in by_term.items():
        listed_rows.sort()
        del listed_rows[depth:]  # the first depth over every shard
        full = len(listed_rows) == depth
        bounds[term] = scorer.weights[term] * -listed_rows[-1][0] * slack if full else 0.0
        for _, iid, tf, length in listed_rows:
            known.setdefault(iid, {})[term] = scorer.part(term, tf, length)
    open_terms = [t for t, b in bounds.items() if b > 0]
    lower = {iid: sum(parts.values()) for iid, parts in known.items()}
    ranked = sorted(lower.values(), reverse=True)
    threshold = ranked[n - 1] if len(ranked) >= n else float("-inf")
    unsure = [
        iid
        for iid, parts in known.items()
        if any(t not in parts for t in open_terms)
        and lower[iid] + sum(bounds[t] for t in open_terms if t not in parts) >= threshold
    ]
    ask = sorted({*unsure, *(int(i) for i in also if int(i) not in known)})
    if ask:  # the missing terms of the unsure documents (and of ``also``), by primary key
        for iid, term, tf, length in rows(
            f"SELECT iid, term, tf, n_terms FROM {postings} WHERE term = ANY(%s) AND iid = ANY(%s)",
            [sorted(scorer.weights), ask],
            binary=True,
        ):
            known.setdefault(iid, {})[term] = scorer.part(term, tf, length)
    listed = {iid for kept in by_term.values() for _, iid, _, _ in kept}
    probed = set(unsure)
    exact = [iid for iid in listed if iid in probed or all(t in known[iid] for t in open_terms)]
    best = sorted(((iid, _total(known[iid])) for iid in exact), key=lambda p: (-p[1], p[0]))
    also_scores = {int(i): _total(known.get(int(i), {})) for i in also}
    return best[:n], also_scores


def _total(parts: dict[str, float]) -> float:
    """A document's score: its terms' parts summed in term order (the same on every layout)."""
    return float(sum(parts[t] for t in sorted(parts)))


__all__ = ["Scorer", "candidates_sql", "top_k"]
