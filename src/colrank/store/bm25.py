"""BM25's formula, shared by every backend: Lucene's IDF, the query's IDFs, texts' scores.

Scoring is BM25 with Lucene's IDF, ``log(1 + (N - df + 0.5) / (df + 0.5))``, and
``tf / (tf + k1 * (1 - b + b * len / avg_len))``, k1 = 1.5 and b = 0.75: the ``bm25s``
defaults. A backend keeps the corpus statistics (document count, document frequencies,
lengths) its own way and computes the query's IDFs with :func:`query_idf`.

Example:
    >>> pairs = query_idf(["cat", "dog", "cat"], {"cat": 1}.get, n_docs=2)
    >>> [(token, round(idf, 3)) for token, idf in pairs]
    [('cat', 0.693), ('cat', 0.693)]
    >>> texts_bm25(pairs, [["cat", "sat"], ["dog"]], avg_len=2.0).round(3).tolist()
    [0.555, 0.0]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

K1, B = 1.5, 0.75
Term = TypeVar("Term")


def lucene_idf(n_live: int | np.ndarray, df: int | np.ndarray) -> np.ndarray:
    """BM25's IDF as Lucene (and bm25s) compute it: ``log(1 + (N - df + 0.5) / (df + 0.5))``."""
    return np.log1p((n_live - np.asarray(df, dtype=np.float64) + 0.5) / (df + 0.5))


def saturation(tf: Any, length: Any, average_length: float) -> Any:
    """BM25's term-frequency part: ``tf / (tf + k1 * (1 - b + b * length / avg))``.

    Works on numbers and on numpy arrays alike (a term's weight is its IDF times this).
    """
    return tf / (tf + K1 * (1 - B + B * length / average_length))


def saturation_sql(tf: str, length: str, average_length: str) -> str:
    """:func:`saturation` as SQL over the given column or parameter expressions."""
    return f"{tf} / ({tf} + {K1} * (1 - {B} + {B} * {length} / {average_length}))"


def query_idf(
    terms: Sequence[Term], document_frequency: Callable[[Term], int | None], n_docs: int
) -> list[tuple[Term, float]]:
    """``(term, idf)`` of each query term the corpus holds, in query order (repeats kept).

    ``document_frequency`` gives a term's live document count (None or 0: not in the
    corpus, left out). The query's largest possible BM25 is the sum of these IDFs.
    """
    out = []
    for term in terms:
        df = document_frequency(term)
        if df:
            out.append((term, float(lucene_idf(n_docs, df))))
    return out


def texts_bm25(
    query_idf: Sequence[tuple[str, float]], token_lists: Sequence[Sequence[str]], avg_len: float
) -> np.ndarray:
    """BM25 of tokenised texts for ``(query token, idf)`` pairs, under a corpus's ``avg_len``.

    Repeated query tokens count again, as in the index's own scores.
    """
    out = np.zeros(len(token_lists), dtype=np.float32)  # float32 sums, as the index's
    for row, tokens in enumerate(token_lists):
        bag = Counter(tokens)
        norm = K1 * (1 - B + B * len(tokens) / max(avg_len, 1e-9))
        for token, idf in query_idf:
            tf = bag.get(token, 0)
            if tf:
                out[row] += np.float32(idf * tf / (tf + norm))
    return out.astype(np.float64)


__all__ = ["B", "K1", "lucene_idf", "query_idf", "saturation", "saturation_sql", "texts_bm25"]
