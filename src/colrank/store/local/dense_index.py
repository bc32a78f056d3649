"""First-stage recall over FAISS: exact inner product, HNSW or IVF.

Vectors are keyed by the engine's internal int64 ids (``IndexIDMap2`` for flat and
HNSW; IVF stores the ids natively, with a hashtable direct map for lookups). Metadata
filters arrive as the set of allowed ids and are applied *inside* the FAISS search
through an ``IDSelector`` (before the top-k cut), so a filtered query still fills k
when k matching documents exist. Approximate indexes can under-fill a very selective
filter; then, or when the allowed set is small, the search is done exactly over the
allowed vectors instead.

Example:
    >>> import numpy as np
    >>> from colrank.config import DenseIndexConfig
    >>> index = DenseIndex(dim=2, config=DenseIndexConfig())
    >>> index.add(np.array([7, 9]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32"))
    >>> index.search(np.array([[0.0, 1.0]], dtype="float32"), k=1)[1].tolist()
    [[9]]
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import faiss
import numpy as np

from colrank.errors import CorruptIndexError, DimensionMismatchError
from colrank.index_settings import DenseIndexConfig
from colrank.store.local.files import index_file, load_npy
from colrank.store.local.query_threads import few_query_threads

logger = logging.getLogger(__name__)

FAISS_FILE = "dense.faiss"
TOMBSTONES_FILE = "dense_tombstones.npy"
# Below this many allowed ids a filtered search is done exactly (cheap and never under-fills).
EXACT_FILTER_LIMIT = 20_000


def no_hits(n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty result of a search: ``(scores, ids)`` with no column per query."""
    return np.zeros((n_queries, 0), np.float32), np.zeros((n_queries, 0), np.int64)


class DenseIndex:
    """A FAISS index with int64 ids, deletes, and filter-aware search."""

    def __init__(self, dim: int, config: DenseIndexConfig | None = None) -> None:
        self.dim = int(dim)
        self.config = config or DenseIndexConfig()
        self._index = self._new_index()
        self._tombstones: set[int] = set()

    # ------------------------------------------------------------------ info
    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def kind(self) -> str:
        """``flat``, ``hnsw`` or ``ivf``."""
        return self.config.kind

    # ---------------------------------------------------------------- writes
    def add(self, iids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under the given internal ids."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"dense vectors of shape {vectors.shape} do not fit this index "
                f"(dimension {self.dim}); was it built with another dense model?"
            )
        if not len(vectors):
            return
        if self.kind == "ivf" and not self._index.is_trained:
            self._train_ivf(vectors)
        self._index.add_with_ids(vectors, np.asarray(iids, dtype=np.int64))

    def remove(self, iids: np.ndarray) -> None:
        """Remove ids (HNSW cannot remove in place: ids become tombstones until rebuild)."""
        ids = np.asarray(iids, dtype=np.int64)
        if self.kind == "hnsw":
            self._tombstones.update(int(i) for i in ids)
            if len(self._tombstones) > 0.2 * max(1, self._index.ntotal):
                self.rebuild()
        elif self.kind == "ivf":
            # IVF keeps our ids natively; its hashtable direct map removes by id array.
            self._index.remove_ids(faiss.IDSelectorArray(ids))
        else:
            self._index.remove_ids(ids)

    def rebuild(self) -> None:
        """Rebuild the index from its live vectors (drops HNSW tombstones)."""
        live = self.ids()
        vectors = self.vectors(live)
        self._index = self._new_index()
        self._tombstones = set()
        self.add(live, vectors)

    # ----------------------------------------------------------------- reads
    def ids(self) -> np.ndarray:
        """Live internal ids."""
        if self.kind == "ivf":
            invlists = self._index.invlists
            id_map = np.concatenate(
                [
                    faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                    for i in range(invlists.nlist)
                ]
                or [np.zeros(0, dtype=np.int64)]
            ).astype(np.int64)
        else:
            id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._tombstones:
            id_map = id_map[~np.isin(id_map, list(self._tombstones))]
        return id_map

    def vectors(self, iids: np.ndarray) -> np.ndarray:
        """Stored vectors of the given ids (``(n, dim)`` float32)."""
        ids = np.ascontiguousarray(iids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        # One C++ loop over the id map (IDMap2 / IVF hashtable), not a Python call per id.
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner products per query, restricted to ``allowed`` ids when given.

        Returns:
            ``(scores, ids)``, each ``(n_queries, k')`` with ``k' <= k``; missing slots
            (fewer than k documents) have id -1.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"query vectors have dimension {queries.shape[1]}, the index {self.dim}"
            )
        n_available = len(self) if allowed is None else len(allowed)
        k = max(1, min(k, max(n_available, 1)))
        with few_query_threads(len(queries)):
            return self._search(queries, k, allowed)

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if len(allowed) == 0:
                return no_hits(len(queries))
            if self.kind != "flat" and len(allowed) <= EXACT_FILTER_LIMIT:
                return self._exact_search(queries, k, allowed)
            selector = faiss.IDSelectorBatch(allowed)
        elif self._tombstones:
            selector = faiss.IDSelectorNot(
                faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
            )
        else:
            selector = None
        scores, ids = self._index.search(queries, k, params=self._params(selector))
        if allowed is not None and self.kind != "flat" and np.any(ids < 0):
            return self._exact_search(queries, k, allowed)
        return scores, ids

    # ------------------------------------------------------------ persistence
    def save(
        self, directory: Path, files: tuple[str, str] = (FAISS_FILE, TOMBSTONES_FILE)
    ) -> list[str]:
        """Write the FAISS index (FAISS's own binary format) and any tombstones.

        ``files``: the names of the two files (another index of the snapshot uses others).
        """
        faiss.write_index(self._index, str(directory / files[0]))
        np.save(
            directory / files[1],
            np.array(sorted(self._tombstones), dtype=np.int64),
            allow_pickle=False,
        )
        return list(files)

    @classmethod
    def load(
        cls,
        directory: Path,
        config: DenseIndexConfig,
        files: tuple[str, str] = (FAISS_FILE, TOMBSTONES_FILE),
    ) -> DenseIndex:
        """Read a saved index (``files`` as given to :meth:`save`)."""
        try:
            with index_file(directory, files[0]) as handle:  # FAISS opens no path itself
                raw = faiss.read_index(faiss.PyCallbackIOReader(handle.read))
            tombstones = load_npy(directory, files[1])
        except (RuntimeError, OSError, ValueError, MemoryError) as exc:
            raise CorruptIndexError(f"{files[0]} in {directory} is unreadable: {exc}") from exc
        index = cls(raw.d, config)
        index._index = raw  # read_index already returns the concrete type (and owns it)
        index._tombstones = {int(i) for i in tombstones}
        return index

    # -------------------------------------------------------------- internals
    def _new_index(self) -> faiss.Index:
        cfg = self.config
        if cfg.kind == "ivf":
            # Untrained placeholder: nlist is fixed when the first batch trains it.
            return self._new_ivf(1)
        if cfg.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = cfg.hnsw_ef_construction
        else:
            base = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(base)

    def _new_ivf(self, nlist: int) -> faiss.IndexIVFFlat:
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct/remove by our ids
        return ivf

    def _train_ivf(self, vectors: np.ndarray) -> None:
        n = len(vectors)
        nlist = self.config.ivf_nlist or max(1, int(4 * math.sqrt(n)))
        nlist = max(1, min(nlist, n // 39 or 1))
        self._index = self._new_ivf(nlist)
        self._index.train(vectors)
        logger.info("trained IVF with %d lists on %d vectors", nlist, n)

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        cfg = self.config
        if cfg.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=cfg.hnsw_ef_search)
        if cfg.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=cfg.ivf_nprobe)
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def _exact_search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.vectors(allowed)
        scores = queries @ vectors.T
        k = min(k, len(allowed))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1), allowed[top]


__all__ = ["DenseIndex", "no_hits"]
