"""The MUVERA first stage's index: one fixed dimensional encoding per document, in FAISS.

Each document's *stored* token embeddings (as the token store decodes them, so after
its codec and pooling) are encoded by :class:`~colrank.store.fde.FdeEncoder` and kept
in a :class:`~colrank.store.local.dense_index.DenseIndex` (inner product, with its
deletes and filter-aware search). The index is made for one
:class:`~colrank.config.MuveraConfig` and token dimension; the backend builds it on the
first ``muvera`` search and keeps it in step with every write after that.

Example:
    >>> import numpy as np
    >>> from colrank.config import MuveraConfig
    >>> index = FdeIndex(MuveraConfig(k_sim=2, d_proj=4, r_reps=2), token_dim=8)
    >>> eye = np.eye(8, dtype="float32")
    >>> index.add(np.array([3, 4]), [eye[:2], eye[5:]])
    >>> index.search([eye[5:6]], n=1)[1].tolist()
    [[4]]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colrank.errors import CorruptIndexError
from colrank.index_settings import DenseIndexConfig, MuveraConfig
from colrank.store.fde import FdeEncoder
from colrank.store.local.dense_index import DenseIndex, no_hits
from colrank.store.local.query_threads import few_query_threads

FDE_FILES = ("muvera.faiss", "muvera_tombstones.npy")
BUILD_BATCH = 1024
"""Documents encoded per step when the index is built from the stored tokens."""


class FdeIndex:
    """FDEs of stored documents, searchable by the FDE of a query's tokens.

    Args:
        config: the encoding's parameters and the FAISS index kind.
        token_dim: the stored token embeddings' dimension.
    """

    def __init__(self, config: MuveraConfig, token_dim: int) -> None:
        self.config = config
        self.token_dim = int(token_dim)
        self.encoder = FdeEncoder(
            self.token_dim,
            k_sim=config.k_sim,
            d_proj=config.d_proj,
            r_reps=config.r_reps,
            final_dim=config.final_dim,
            seed=config.seed,
        )
        self._vectors = DenseIndex(self.encoder.dim, _faiss_config(config))

    @classmethod
    def build(
        cls,
        config: MuveraConfig,
        token_dim: int,
        iids: np.ndarray,
        tokens: Callable[[list[int]], list[np.ndarray]],
    ) -> FdeIndex:
        """The index of the documents ``iids``, whose tokens ``tokens(ids)`` returns."""
        index = cls(config, token_dim)
        ids = np.asarray(iids, dtype=np.int64)
        for start in range(0, len(ids), BUILD_BATCH):
            part = ids[start : start + BUILD_BATCH]
            index.add(part, tokens(part.tolist()))
        return index

    def matches(self, config: MuveraConfig, token_dim: int) -> bool:
        """Whether this index was made with these settings."""
        return self.config == config and self.token_dim == token_dim

    def __len__(self) -> int:
        return len(self._vectors)

    def add(self, iids: np.ndarray, token_sets: Sequence[np.ndarray]) -> None:
        """Encode documents' tokens and add them under their internal ids."""
        if len(token_sets):
            self._vectors.add(np.asarray(iids), self.encoder.encode_documents(token_sets))

    def remove(self, iids: np.ndarray) -> None:
        """Remove documents by internal id."""
        self._vectors.remove(np.asarray(iids, dtype=np.int64))

    def search(
        self, query_tokens: Sequence[np.ndarray], n: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` FDE inner products per query (ids -1 pad missing slots)."""
        with few_query_threads(len(query_tokens)):  # the FAISS search sees to its own
            queries = self.encoder.encode_queries(query_tokens)
        if not len(self._vectors):
            return no_hits(len(queries))
        return self._vectors.search(queries, n, allowed)

    def scores(
        self, query_tokens: np.ndarray, iids: Sequence[int], others: Sequence[np.ndarray]
    ) -> np.ndarray:
        """One query's inner products with stored documents (by id), then with token sets."""
        with few_query_threads(1):
            query = self.encoder.encode_queries([query_tokens])[0]
            stored = self._vectors.vectors(np.asarray(iids, dtype=np.int64)) @ query
            encoded = self.encoder.encode_documents(others) @ query if len(others) else []
        return np.concatenate([stored, encoded]).astype(np.float64)

    def save(self, directory: Path) -> list[str]:
        """Write the FAISS index of the encodings; returns the file names."""
        return self._vectors.save(directory, FDE_FILES)

    @classmethod
    def load(cls, directory: Path, config: MuveraConfig, token_dim: int) -> FdeIndex:
        """Read an index saved with these settings."""
        index = cls(config, token_dim)
        vectors = DenseIndex.load(directory, _faiss_config(config), FDE_FILES)
        if vectors.dim != index.encoder.dim:
            raise CorruptIndexError(
                f"the saved MUVERA encodings have dimension {vectors.dim}, their settings "
                f"give {index.encoder.dim}"
            )
        index._vectors = vectors
        return index


TokenReader = Callable[[list[int]], list[np.ndarray]]
"""``internal ids -> their stored token embeddings`` (decoded)."""


class FdeSlot:
    """A backend's FDE index, once a search asked for it: kept in step, saved, reopened.

    The backend calls :meth:`get` under its read lock (no write runs meanwhile) and
    the write hooks under its exclusive lock; a lock of its own makes concurrent
    searches build the index once.
    """

    def __init__(self) -> None:
        self.index: FdeIndex | None = None
        self._building = threading.Lock()

    def get(
        self, config: MuveraConfig, token_dim: int, iids: np.ndarray, tokens: TokenReader
    ) -> FdeIndex:
        """The index for ``config``, built from the stored tokens when missing or other."""
        with self._building:
            index = self.index
            if index is None or not index.matches(config, token_dim):
                index = FdeIndex.build(config, token_dim, iids, tokens)
                self.index = index
            return index

    def added(self, iids: np.ndarray, tokens: TokenReader) -> Callable[[], None]:
        """Encode newly stored documents (when the index exists); returns their undo."""
        index = self.index
        if index is None:
            return lambda: None
        index.add(iids, tokens(np.asarray(iids).tolist()))
        return lambda: index.remove(iids)

    def removed(self, iids: np.ndarray) -> None:
        """Forget deleted or replaced documents."""
        if self.index is not None:
            self.index.remove(np.asarray(iids, dtype=np.int64))

    def drop(self) -> None:
        """Forget the index (the stored tokens changed); the next search rebuilds it."""
        self.index = None

    def save(self, directory: Path, store: dict[str, Any]) -> list[str]:
        """Write the index, if any, and note its settings in the manifest's ``store``."""
        if self.index is None:
            return []
        store["muvera"] = self.index.config.model_dump(mode="json")
        return self.index.save(directory)

    def load(self, directory: Path, store: dict[str, Any], token_dim: int, count: int) -> None:
        """Reopen the index a snapshot holds (its ``store`` manifest entry says)."""
        if not store.get("muvera"):
            return
        index = FdeIndex.load(directory, MuveraConfig.model_validate(store["muvera"]), token_dim)
        if len(index) != count:
            raise CorruptIndexError(
                f"the MUVERA index holds {len(index)} documents, the index {count}"
            )
        self.index = index


def _faiss_config(config: MuveraConfig) -> DenseIndexConfig:
    return DenseIndexConfig(kind=config.index)


__all__ = ["FDE_FILES", "FdeIndex", "FdeSlot", "TokenReader"]
