"""A readers-writer lock for in-process backends.

Many searches read at once; a write waits for the readers in flight and blocks new
ones only while it applies its (already encoded) batch. Writers queue on a separate
mutex first, so the preparation of the next batch (BM25 tokenising, validation) runs
while readers go on; only the commit is exclusive. Waiting writers are preferred over
new readers, so a steady stream of searches cannot starve a write.

The standard library has no readers-writer lock and the PyPI ones are either
unmaintained or lack the separate writer queue, so this is ~40 lines over
``threading.Condition``.

Example:
    >>> lock = ReadWriteLock()
    >>> with lock.reading():
    ...     pass
    >>> with lock.writer(), lock.exclusive():
    ...     pass
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Shared reads, exclusive commits, one writer at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._committing = False
        self._waiting_commits = 0
        self._writer = threading.RLock()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold a shared read for the block."""
        with self._cond:
            while self._committing or self._waiting_commits:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Be the one writer (readers continue); nest :meth:`exclusive` to commit."""
        with self._writer:
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No reader runs during the block (call inside :meth:`writer`)."""
        with self._cond:
            self._waiting_commits += 1
            while self._readers or self._committing:
                self._cond.wait()
            self._waiting_commits -= 1
            self._committing = True
        try:
            yield
        finally:
            with self._cond:
                self._committing = False
                self._cond.notify_all()


__all__ = ["ReadWriteLock"]
