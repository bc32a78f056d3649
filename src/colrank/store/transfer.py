"""Copy a collection from one backend to another without encoding anything again.

The stored dense vectors, token embeddings, texts and metadata are read through the
source's read view and written to the target in batches (each batch one write, so one
transaction on a database). Use it to move a local index into PostgreSQL, or back.

Example:
    >>> copy_collection(local_index.backend, postgres_backend)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from colrank.store.base import DocumentRows, StorageBackend, WriteBatch


def copy_collection(
    source: StorageBackend,
    target: StorageBackend,
    *,
    batch_size: int = 1000,
    on_conflict: str = "error",
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write every document of ``source`` into ``target``; returns how many were copied."""
    info = source.info
    with source.read() as view:
        ids = view.ids()
        copied = 0
        for start in range(0, len(ids), batch_size):
            part = ids[start : start + batch_size]
            found = view.iids_for(part)
            iids = [found[i] for i in part]
            docs = view.documents(iids)
            rows = DocumentRows(
                [d.id for d in docs],
                [d.text for d in docs],
                [d.metadata for d in docs],
                view.dense_vectors(iids),
                view.token_embeddings(iids),
            )
            target.write(
                WriteBatch(upserts=rows, on_conflict=on_conflict),  # type: ignore[arg-type]
                dense_model=info.dense_model,
                colbert_model=info.colbert_model,
            )
            copied += len(part)
            if on_progress is not None:
                on_progress(len(part))
    return copied


__all__ = ["copy_collection"]
