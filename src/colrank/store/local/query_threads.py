"""One thread for the FAISS and numpy work of a search of few queries.

Three thread pools share the cores during a search: PyTorch's (query encoding, MaxSim),
the OpenMP runtime faiss-cpu ships for itself, and numpy's BLAS (OpenBLAS in numpy's
wheels). After a parallel call, the idle workers of the last two spin-wait and take the
cores from the PyTorch work that follows, while a search of one query gains nothing from
them (FAISS splits its work by query; a query's MUVERA projection is a small product).
Measured on 2 cores, SciFact queries one at a time:

- dense -> ColBERT, FAISS on 2 threads: 15.9 ms per search at p50, 8.0 ms on one;
- ``first_stage="muvera"``: 29 of 120 searches over 50 ms (MaxSim 72-100 ms instead of
  ~4) with numpy's BLAS on 2 threads, none with it on one.

So a search of fewer than :data:`FEW_QUERIES` queries runs its FAISS calls on one OpenMP
thread (OpenMP keeps that count per calling thread) and numpy's BLAS on one thread
(``threadpoolctl``; BLAS's count is process-wide, so concurrent searches share one limit
and the last to finish restores it). Batches keep every thread.

Example:
    >>> import faiss
    >>> before = faiss.omp_get_max_threads()
    >>> with few_query_threads(1):
    ...     faiss.omp_get_max_threads()
    1
    >>> faiss.omp_get_max_threads() == before
    True
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

import faiss

FEW_QUERIES = 20
"""Searches of fewer queries run FAISS and numpy's BLAS on one thread."""

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None  # threadpoolctl's limiter while any search holds the limit


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspects the loaded BLAS libraries once (~ms)


def _hold_blas() -> None:
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = _controller().limit(limits=1, user_api="blas")
        _blas_users += 1


def _release_blas() -> None:
    global _blas_users, _blas_limit
    with _blas_lock:
        _blas_users -= 1
        if _blas_users == 0 and _blas_limit is not None:
            _blas_limit.restore_original_limits()
            _blas_limit = None


@contextlib.contextmanager
def few_query_threads(n_queries: int) -> Iterator[None]:
    """FAISS and numpy's BLAS on one thread for a search of ``n_queries`` (when few)."""
    if n_queries >= FEW_QUERIES:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    _hold_blas()
    try:
        yield
    finally:
        _release_blas()
        faiss.omp_set_num_threads(before)


__all__ = ["FEW_QUERIES", "few_query_threads"]
