"""An LRU cache of document token embeddings keyed by content hash.

``functools.lru_cache`` caches one call at a time; reranking needs to look up a whole
candidate list, encode only the misses in one batch, then insert them, so this is a
small ``OrderedDict`` LRU instead.

Example:
    >>> import numpy as np
    >>> cache = TokenCache(capacity=1)
    >>> cache.put(content_key("a"), np.ones((2, 4)))
    >>> cache.get(content_key("a")).shape, cache.get(content_key("b"))
    ((2, 4), None)
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np


def content_key(text: str) -> str:
    """SHA-256 of the text, the cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TokenCache:
    """Least-recently-used map from content key to a ``(n_tokens, dim)`` array."""

    def __init__(self, capacity: int, dtype: str = "float16") -> None:
        self.capacity = int(capacity)
        self.dtype = np.dtype(dtype)  # cached arrays are kept in this precision
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
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
        """Insert, evicting the least recently used entries beyond capacity."""
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[key] = np.asarray(value, dtype=self.dtype)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()


__all__ = ["TokenCache", "content_key"]
