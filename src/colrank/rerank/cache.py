"""An LRU cache of document embeddings keyed by content hash, bounded in bytes.

``functools.lru_cache`` caches one call at a time and counts entries; reranking looks
up a whole candidate list, encodes only the misses in one batch, then inserts them,
and a token matrix of a long document weighs a hundred times a short one's, so this
is a small ``OrderedDict`` LRU that counts the bytes it holds.

Example:
    >>> import numpy as np
    >>> cache = TokenCache(max_bytes=16)                     # room for one (2, 4) float16 array
    >>> cache.put(content_key("a"), np.ones((2, 4)))
    >>> cache.put(content_key("b"), np.ones((2, 4)))        # evicts "a"
    >>> cache.get(content_key("a")), cache.get(content_key("b")).shape, cache.nbytes
    (None, (2, 4), 16)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np


def content_key(text: str) -> str:
    """SHA-256 of the text, the cache key."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class TokenCache:
    """Least-recently-used map from content key to an array, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int, dtype: str = "float16") -> None:
        self.max_bytes = int(max_bytes)
        self.dtype = np.dtype(dtype)  # cached arrays are kept in this precision
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> np.ndarray | None:
        """The cached array (marked recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        """Insert, evicting least recently used entries until the bytes fit.

        An array larger than the whole cache is not kept.
        """
        array = np.asarray(value, dtype=self.dtype)
        if array.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._items[key] = array
            self.nbytes += array.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self.nbytes = 0


__all__ = ["TokenCache", "content_key"]
