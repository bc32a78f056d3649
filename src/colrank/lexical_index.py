"""BM25 lexical recall with ``bm25s``, keyed by the engine's internal ids.

BM25 statistics (IDF, average length) depend on the whole corpus, so additions mark
the index stale and it is rebuilt from the document store on its next use (a lazy
rebuild, linear in corpus size). Deletions only mask documents out (``weight_mask``),
which keeps the statistics of the last build until then. Saved with ``bm25s``'s own
format (numpy arrays and JSON, no pickle).

Example:
    >>> bm25 = BM25Index()
    >>> bm25.build([10, 11], ["the cat sat", "dogs bark loudly"])
    >>> bm25.search("barking dog", k=1)[1].tolist()
    [11]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from colrank.errors import CorruptIndexError

BM25_DIR = "bm25"
_IIDS_FILE = "bm25_doc_ids.npy"
_ALIVE_FILE = "bm25_alive.npy"
_META_FILE = "bm25_colrank.json"


def _stemmer(language: str):
    try:
        import Stemmer
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return None
    return Stemmer.Stemmer(language)


class BM25Index:
    """BM25 over internal ids, with masking deletes and lazy rebuilds."""

    def __init__(self, language: str = "english") -> None:
        self.language = language
        self._stem = _stemmer(language)
        self._bm25: bm25s.BM25 | None = None
        self._iids = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self.stale = True

    def __len__(self) -> int:
        return int(self._alive.sum())

    def _tokenize(self, texts: Sequence[str]) -> bm25s.tokenization.Tokenized:
        return bm25s.tokenize(
            list(texts), stopwords=self.language[:2], stemmer=self._stem, show_progress=False
        )

    def build(self, iids: Sequence[int], texts: Sequence[str]) -> None:
        """(Re)build from the whole live corpus."""
        self._bm25 = bm25s.BM25()
        if len(texts):
            self._bm25.index(self._tokenize(texts), show_progress=False)
        self._iids = np.asarray(iids, dtype=np.int64)
        self._alive = np.ones(len(self._iids), dtype=bool)
        self.stale = False

    def delete(self, iids: Sequence[int]) -> None:
        """Mask documents out until the next rebuild."""
        self._alive[np.isin(self._iids, np.asarray(iids, dtype=np.int64))] = False

    def scores(self, query: str, allowed: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every indexed document (masked ones get -inf), in build order."""
        if self._bm25 is None or len(self._iids) == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = bm25s.tokenize(
            [query],
            stopwords=self.language[:2],
            stemmer=self._stem,
            return_ids=False,
            show_progress=False,
        )[0]
        vocab = self._bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        out = (
            self._bm25.get_scores(known).astype(np.float32)
            if known
            else np.zeros(len(self._iids), dtype=np.float32)
        )
        mask = self._alive if allowed is None else self._alive & np.isin(self._iids, allowed)
        out[~mask] = -np.inf
        return out

    @property
    def ids(self) -> np.ndarray:
        """Internal ids in build order (aligned with :meth:`scores`)."""
        return self._iids

    def top(self, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores, iids)`` of a :meth:`scores` array; zero-score documents are left out."""
        k = min(k, int((scores > 0).sum()))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self._iids[top]

    def pick(self, scores: np.ndarray, iids: np.ndarray) -> np.ndarray:
        """Entries of a :meth:`scores` array for the given ids (NaN when not indexed)."""
        iids = np.asarray(iids, dtype=np.int64)
        if len(self._iids) == 0:
            return np.full(len(iids), np.nan)
        pos = np.searchsorted(self._iids, iids)
        pos_c = np.minimum(pos, len(self._iids) - 1)
        found = (pos < len(self._iids)) & (self._iids[pos_c] == iids)
        return np.where(found, scores[pos_c].astype(np.float64), np.nan)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ``(scores, iids)``; documents with no query term are not returned."""
        return self.top(self.scores(query, allowed), k)

    def save(self, directory: Path) -> list[str]:
        """Write under ``directory/bm25``; returns paths relative to ``directory``."""
        target = directory / BM25_DIR
        target.mkdir(exist_ok=True)
        if self._bm25 is None:
            raise ValueError("BM25 index was never built")
        self._bm25.save(str(target), show_progress=False)
        np.save(target / _IIDS_FILE, self._iids, allow_pickle=False)
        np.save(target / _ALIVE_FILE, self._alive, allow_pickle=False)
        (target / _META_FILE).write_text(json.dumps({"language": self.language}))
        return sorted(str(p.relative_to(directory)) for p in target.rglob("*") if p.is_file())

    @classmethod
    def load(cls, directory: Path) -> BM25Index | None:
        """Read a saved BM25 index, or None when the snapshot has none."""
        target = directory / BM25_DIR
        if not target.is_dir():
            return None
        try:
            meta = json.loads((target / _META_FILE).read_text())
            index = cls(meta["language"])
            index._bm25 = bm25s.BM25.load(str(target), mmap=False)
            index._iids = np.load(target / _IIDS_FILE, allow_pickle=False)
            index._alive = np.load(target / _ALIVE_FILE, allow_pickle=False)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise CorruptIndexError(f"BM25 index in {target} is unreadable: {exc}") from exc
        index.stale = False
        return index


__all__ = ["BM25Index"]
