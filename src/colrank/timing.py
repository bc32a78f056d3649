"""Per-call stage timings: a search fills the dict its caller passes, nothing shared.

Example:
    >>> timings: Timings = {}
    >>> with timed(timings, "faiss"):
    ...     pass
    >>> list(timings)
    ['faiss']
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

Timings = dict[str, float]
"""Seconds per stage name (``dense_encode``, ``faiss``, ``token_fetch``, ``maxsim`` ...)."""


@contextmanager
def timed(timings: Timings | None, stage: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]`` (no-op when ``timings`` is None)."""
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


__all__ = ["Timings", "timed"]
