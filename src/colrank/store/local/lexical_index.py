"""BM25 lexical recall keyed by the engine's internal ids, updated in place.

Documents are tokenized once, when added (``bm25s``'s tokenizer: stopwords and a
Snowball stemmer), and kept as sparse term-frequency rows. BM25 weights are computed at
query time from those counts and the *current* corpus statistics (document count,
document frequencies, average length), which adds and deletes keep exact, so scores
always equal a fresh BM25 over the live documents. An add tokenizes only the new
documents, but appends their rows to the index's arrays by concatenation, which copies
every array once per add (memory traffic in proportion to the whole index; no
re-tokenizing, no rebuild): add in batches.

Scoring is :mod:`colrank.store.bm25`'s (Lucene's IDF, k1 = 1.5, b = 0.75: the ``bm25s``
defaults; the tests check the scores against ``bm25s``). Written here rather than with
``bm25s.BM25`` because that index is static: it must be rebuilt from every text after
each addition. Saved as numpy arrays plus a JSON vocabulary (no pickle).

Example:
    >>> bm25 = BM25Index()
    >>> bm25.add([10, 11], ["the cat sat", "dogs bark loudly"])
    >>> scores, query_max = bm25.scores_and_max("barking dog")
    >>> bm25.top(scores, k=1)[1].tolist(), round(query_max, 3)
    ([11], 1.386)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse as sp

from colrank.errors import CorruptIndexError
from colrank.store.bm25 import K1, B, query_idf, texts_bm25
from colrank.store.local.files import load_npy, read_json

BM25_DIR = "bm25"
FORMAT = 2  # 1: a bm25s.BM25 directory (rebuilt from the document store when loaded)
_ARRAYS = ("iids", "alive", "lengths", "indptr", "terms", "counts")
_VOCAB_FILE = "vocab.json"
_META_FILE = "bm25_colrank.json"
# Languages bm25s has a stopword list for (others are tokenized without stopwords).
STOPWORD_LANGUAGES = frozenset(
    [
        "english",
        "german",
        "dutch",
        "french",
        "spanish",
        "portuguese",
        "italian",
        "russian",
        "swedish",
        "norwegian",
        "turkish",
        "danish",
    ]
)


def _stemmer(language: str):
    try:
        import Stemmer
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None
    return Stemmer.Stemmer(language)


class BM25Index:
    """BM25 over internal ids: incremental adds, exact deletes, query-time weights."""

    def __init__(self, language: str = "english") -> None:
        self.language = language
        self._stem = _stemmer(language)
        self._vocab: dict[str, int] = {}
        self._iids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._lengths = np.zeros(0, dtype=np.int64)
        # Rows in CSR layout: row i holds terms[indptr[i]:indptr[i+1]] with their counts.
        self._indptr = np.zeros(1, dtype=np.int64)
        self._terms = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.float32)
        self._df = np.zeros(0, dtype=np.int64)  # live documents containing each term
        self._columns: sp.csc_matrix | None = None  # term -> postings, rebuilt lazily
        self._norms: np.ndarray | None = None  # per-row length normalisation, lazily

    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def ids(self) -> np.ndarray:
        """Internal ids in insertion order (aligned with :meth:`scores`)."""
        return self._iids

    # ---------------------------------------------------------------- writes
    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(
            list(texts),
            # bm25s takes the full name ("german"), not its first two letters ("ge")
            stopwords=self.language if self.language in STOPWORD_LANGUAGES else None,
            stemmer=self._stem,
            return_ids=False,
            show_progress=False,
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Tokenize documents for :meth:`add_tokens` (the slow part of an add; no state)."""
        return self._tokenize(texts)

    def add(self, iids: Sequence[int], texts: Sequence[str]) -> None:
        """Index new documents; ids must be larger than every id already indexed."""
        if len(iids) != len(texts):
            raise ValueError("one text per id")
        self.add_tokens(iids, self._tokenize(texts) if len(texts) else [])

    def add_tokens(self, iids: Sequence[int], token_lists: Sequence[list[str]]) -> None:
        """Index documents already split by :meth:`tokenize`."""
        iids = np.asarray(iids, dtype=np.int64)
        if len(iids) != len(token_lists):
            raise ValueError("one token list per id")
        if not len(iids):
            return
        if np.any(np.diff(iids) <= 0) or (len(self._iids) and iids[0] <= self._iids[-1]):
            raise ValueError("BM25 ids must be added in increasing order")
        terms, counts, sizes, lengths = [], [], [], []
        for tokens in token_lists:
            bag = Counter(self._vocab.setdefault(t, len(self._vocab)) for t in tokens)
            terms.extend(bag.keys())
            counts.extend(bag.values())
            sizes.append(len(bag))
            lengths.append(len(tokens))
        new_terms = np.asarray(terms, dtype=np.int64)
        if len(self._vocab) > len(self._df):
            self._df = np.concatenate(
                [self._df, np.zeros(len(self._vocab) - len(self._df), np.int64)]
            )
        np.add.at(self._df, new_terms, 1)
        self._indptr = np.concatenate([self._indptr, self._indptr[-1] + np.cumsum(sizes)])
        self._terms = np.concatenate([self._terms, new_terms])
        self._counts = np.concatenate([self._counts, np.asarray(counts, dtype=np.float32)])
        self._iids = np.concatenate([self._iids, iids])
        self._alive = np.concatenate([self._alive, np.ones(len(iids), dtype=bool)])
        self._lengths = np.concatenate([self._lengths, np.asarray(lengths, dtype=np.int64)])
        self._columns = self._norms = None

    def delete(self, iids: Sequence[int]) -> None:
        """Remove documents from the results and from the corpus statistics."""
        rows = np.flatnonzero(np.isin(self._iids, np.asarray(iids, dtype=np.int64)) & self._alive)
        if not len(rows):
            return
        self._alive[rows] = False
        self._norms = None  # the average length changed
        for row in rows:
            np.subtract.at(self._df, self._terms[self._indptr[row] : self._indptr[row + 1]], 1)
        if (~self._alive).sum() > len(self._alive) // 2:
            self._compact()

    def _compacted(self) -> dict[str, np.ndarray]:
        """The row arrays without deleted rows (new arrays; ``self`` is not changed)."""
        keep = np.flatnonzero(self._alive)
        sizes = np.diff(self._indptr)
        entries = np.repeat(self._alive, sizes)  # which (row, term) entries belong to live rows
        return {
            "iids": self._iids[keep],
            "alive": np.ones(len(keep), dtype=bool),
            "lengths": self._lengths[keep],
            "indptr": np.concatenate([[0], np.cumsum(sizes[keep])]).astype(np.int64),
            "terms": self._terms[entries],
            "counts": self._counts[entries],
        }

    def _compact(self) -> None:
        """Drop deleted rows from memory (statistics already exclude them)."""
        for name, array in self._compacted().items():
            setattr(self, f"_{name}", array)
        self._columns = self._norms = None

    # ----------------------------------------------------------------- reads
    def _postings(self) -> sp.csc_matrix:
        if self._columns is None:
            rows = sp.csr_matrix(
                (self._counts, self._terms, self._indptr),
                shape=(len(self._iids), max(len(self._vocab), 1)),
            )
            self._columns = rows.tocsc()
        return self._columns

    def scores_and_max(
        self, query: str, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """BM25 of every document (masked: -inf), in :attr:`ids` order, and the query maximum.

        The query maximum is the largest score any document could get (the sum of the
        query's IDFs). Each term contributes ``idf * tf / (tf + norm)`` < ``idf``, so
        ``score / query_max`` lies in [0, 1] and means the same for every query and candidate depth.
        """
        terms = self._query_terms(query)
        out = np.zeros(len(self._iids), dtype=np.float32)
        n_live = len(self)
        if n_live:
            columns = self._postings()
            if self._norms is None:
                avg_len = max(float(self._lengths[self._alive].mean()), 1e-9)
                self._norms = K1 * (1 - B + B * self._lengths / avg_len)
            norm = self._norms
            for term, idf in terms:  # repeated query terms count again
                start, end = columns.indptr[term], columns.indptr[term + 1]
                rows, tf = columns.indices[start:end], columns.data[start:end]
                out[rows] += (idf * tf / (tf + norm[rows])).astype(np.float32)
        mask = self._alive if allowed is None else self._alive & np.isin(self._iids, allowed)
        out[~mask] = -np.inf
        return out, float(sum(idf for _, idf in terms))

    def _query_terms(self, query: str) -> list[tuple[int, float]]:
        """``(term, idf)`` of each query token the corpus knows (repeats count again)."""
        terms = [self._vocab.get(token) for token in self._tokenize([query])[0]]
        known = [t for t in terms if t is not None]
        return query_idf(known, lambda term: int(self._df[term]), len(self))

    def score_texts_and_max(self, query: str, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """BM25 of texts not indexed, under this index's statistics, and the query maximum.

        Equal to :meth:`scores_and_max`'s for a text that is indexed (same tokens, same length).
        """
        if not len(self):
            return np.zeros(len(texts)), 0.0
        tokens = self._tokenize([query])[0]
        pairs = query_idf(
            tokens, lambda t: int(self._df[self._vocab[t]]) if t in self._vocab else 0, len(self)
        )
        top = float(sum(idf for _, idf in pairs))
        if not texts or not pairs:
            return np.zeros(len(texts)), top
        avg_len = float(self._lengths[self._alive].mean())
        return texts_bm25(pairs, self._tokenize(texts), avg_len), top

    def top(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores, iids)`` of a :meth:`scores_and_max` array; zero-score ones left out."""
        k = min(k, int((scores > 0).sum()))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self._iids[top]

    def pick(self, scores: np.ndarray, iids: np.ndarray) -> np.ndarray:
        """Entries of a :meth:`scores_and_max` array for the given ids (NaN when not indexed)."""
        iids = np.asarray(iids, dtype=np.int64)
        if len(self._iids) == 0:
            return np.full(len(iids), np.nan)
        pos = np.searchsorted(self._iids, iids)  # ids are kept in increasing order
        pos_c = np.minimum(pos, len(self._iids) - 1)
        found = (pos < len(self._iids)) & (self._iids[pos_c] == iids)
        return np.where(found, scores[pos_c].astype(np.float64), np.nan)

    def save(self, directory: Path) -> list[str]:
        """Write live rows under ``directory/bm25``; returns paths relative to ``directory``.

        Only reads this index (readers may search it meanwhile).
        """
        arrays = self._compacted()
        target = directory / BM25_DIR
        target.mkdir(exist_ok=True)
        names = []
        for name in _ARRAYS:
            np.save(target / f"{name}.npy", arrays[name], allow_pickle=False)
            names.append(f"{name}.npy")
        (target / _VOCAB_FILE).write_text(json.dumps(self._vocab, ensure_ascii=False))
        (target / _META_FILE).write_text(json.dumps({"language": self.language, "format": FORMAT}))
        return [f"{BM25_DIR}/{n}" for n in (*names, _VOCAB_FILE, _META_FILE)]

    @classmethod
    def load(cls, directory: Path) -> BM25Index | None:
        """Read a saved BM25 index; None when the snapshot has none (or an older format)."""
        target = directory / BM25_DIR
        if not target.is_dir():
            return None
        try:
            meta = read_json(directory, f"{BM25_DIR}/{_META_FILE}")
            if meta.get("format") != FORMAT:
                return None  # the backend rebuilds it from the document store
            index = cls(meta["language"])
            for name in _ARRAYS:
                setattr(index, f"_{name}", load_npy(directory, f"{BM25_DIR}/{name}.npy"))
            vocab = read_json(directory, f"{BM25_DIR}/{_VOCAB_FILE}", max_bytes=1 << 40)
            if not isinstance(vocab, dict):
                raise ValueError("the vocabulary is not a JSON object")
            index._vocab = vocab
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptIndexError(f"BM25 index in {target} is unreadable: {exc}") from exc
        index._df = np.zeros(len(index._vocab), dtype=np.int64)
        live_entries = np.repeat(index._alive, np.diff(index._indptr))
        np.add.at(index._df, index._terms[live_entries], 1)
        return index


__all__ = ["BM25Index"]
