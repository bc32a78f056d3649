"""Re-making every stored document's tokens in one transaction (a new model or codec).

Searches see the old tokens until the transaction commits, then the new ones with the
new codec: the manifest's ``codec_version`` tells every process to reload the codec.

Example:
    >>> rewrite  # doctest: +ELLIPSIS
    <function rewrite at ...>
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from colrank.store.base import TokenProducer
from colrank.store.codecs import Codec, make_codec
from colrank.store.postgres import schema


def rewrite(
    conn: Any,
    collection: str,
    iids: Sequence[int],
    old_codec: Codec,
    produce: TokenProducer,
    settings: dict[str, Any],
    *,
    step: int = 512,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Replace the tokens of ``iids`` by ``produce(docs, old_tokens)``, chunk by chunk.

    ``settings``: the new ``codec``, ``pool_factor`` and ``colbert_model`` for the
    manifest. Runs inside the caller's transaction, which holds the write lock.
    """
    tables = schema.Tables(collection)
    dim, new_codec = None, None
    for start in range(0, len(iids), step):
        part = list(iids[start : start + step])
        docs, old = schema.fetch_docs_and_tokens(conn, tables, part, old_codec)
        made = produce(docs, old)
        dim = made[0].shape[1] if made else dim
        if new_codec is None:
            new_codec = make_codec(settings["codec"], dim or old_codec.dim)
            if not new_codec.trained:  # trained on the first chunk of the new tokens
                new_codec.fit(np.concatenate([np.asarray(t, np.float32) for t in made]))
            schema.write_codec_params(conn, tables, new_codec)
        schema.update_tokens(conn, tables, part, made, new_codec)
        if on_progress is not None:
            on_progress(len(part))
    version = int((schema.read_manifest(conn, collection) or {}).get("codec_version", 0)) + 1
    update = {**settings, "codec_version": version}
    if dim is not None:
        update["colbert_dim"] = int(dim)
    schema.update_manifest(conn, collection, update)


__all__ = ["rewrite"]
