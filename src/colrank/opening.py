"""Opening a stored collection: a saved local index, or a collection in a database.

Both read what the stored data was made with and settle the settings a
:class:`~colrank.index.ColrankIndex` gets: the stored data decides the index type, token
codec and pooling, and how a stand-in ColBERT reads text (``stand_in_inputs``: an index
saved before that setting was made ``"marked"``); the models must be the stored ones
(:func:`~colrank.models.identity.check_loaded_models`); with no ``config`` the saved
settings are used, with this machine's ``COLRANK_DEVICE`` / ``COLRANK_DTYPE``.

Example:
    >>> backend, config = open_local(Path("my-index"), None, None, None)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colrank.config import ColrankConfig
from colrank.errors import InvalidInputError
from colrank.models.encoders import ColbertEncoder, DenseEncoder
from colrank.models.identity import check_loaded_models, check_trusted_models, named_models
from colrank.store.local.backend import LocalBackend

DATABASE_SCHEMES = ("postgresql://", "postgres://")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_database_url(target: str) -> bool:
    """Whether ``target`` names a database colrank can open (``postgresql://...``)."""
    return target.startswith(DATABASE_SCHEMES)


def check_folder(path: str | Path) -> Path:
    """``path`` as an index folder; a URL (``mysql://...``, ``s3://...``) is refused.

    ``Path("mysql://x/y")`` would quietly become the folder ``mysql:/x/y``.

    Example:
        >>> check_folder("my-index").name
        'my-index'
    """
    text = str(path)
    if _URL.match(text):
        where = "ColrankIndex.open" if is_database_url(text) else "a folder path"
        raise InvalidInputError(
            f"{text!r} is a URL, not an index folder; colrank opens postgresql:// URLs "
            f"(use {where}) and local folders, nothing else"
        )
    return Path(path)


def _settled(
    saved: dict[str, Any] | None,
    config: ColrankConfig | None,
    manifest: dict[str, Any],
    dense: DenseEncoder | None,
    colbert: ColbertEncoder | None,
    trust_models: bool,
) -> ColrankConfig:
    stored = ColrankConfig.from_manifest(saved) if saved else None
    if config is None:
        here = ColrankConfig.from_env()
        config = (stored or here).model_copy(update={"runtime": here.runtime})
        given = {"dense": dense, "colbert": colbert}  # the caller's encoders are trusted
        named = {k: v for k, v in named_models(config).items() if given.get(k) is None}
        remote_code = stored is not None and stored.models.trust_remote_code
        check_trusted_models(named, trust_models, remote_code=remote_code)  # one gate
    if stored is not None:  # what the stored data is, not what the caller asks for
        inputs = stored.models.stand_in_inputs  # queries are read as the documents were
        config = config.model_copy(
            update={
                "dense_index": stored.dense_index,
                "token_store": stored.token_store,
                "models": config.models.model_copy(update={"stand_in_inputs": inputs}),
            }
        )
    check_loaded_models(manifest, config, dense, colbert)
    return config


@contextlib.contextmanager
def _closed_on_error(backend: Any) -> Iterator[None]:
    """Close a just-opened backend when its settings are refused (models, trust)."""
    try:
        yield
    except Exception:
        backend.close()
        raise


def open_local(
    path: str | Path,
    config: ColrankConfig | None,
    dense: DenseEncoder | None,
    colbert: ColbertEncoder | None,
    *,
    verify: bool = True,
    mmap: bool = True,
    trust_models: bool = False,
) -> tuple[LocalBackend, ColrankConfig]:
    """The backend of a saved index and the settings to open it with."""
    backend, manifest = LocalBackend.load(check_folder(path), verify=verify, mmap=mmap)
    with _closed_on_error(backend):
        return backend, _settled(manifest["config"], config, manifest, dense, colbert, trust_models)


def open_database(
    url: str,
    collection: str,
    config: ColrankConfig | None,
    dense: DenseEncoder | None,
    colbert: ColbertEncoder | None,
    trust_models: bool = False,
    **options: Any,
) -> tuple[Any, ColrankConfig]:
    """A database collection's backend (created on its first write) and its settings."""
    if not is_database_url(url):
        raise InvalidInputError(
            f"{url!r} is not a database URL; use postgresql://user@host:port/database "
            "(or ColrankIndex.load for a saved folder)"
        )
    try:
        from colrank.store.postgres.backend import PostgresBackend
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise InvalidInputError(
            "the PostgreSQL backend needs psycopg and pgvector: pip install 'colrank[postgres]'"
        ) from exc
    wanted = config or ColrankConfig.from_env()
    chosen = "codec" in wanted.token_store.model_fields_set  # else the server's default, int8
    codec = options.pop("codec", None) or (wanted.token_store.codec if chosen else None)
    backend = PostgresBackend(
        url,
        collection,
        **({"codec": codec} if codec else {}),
        pool_factor=wanted.token_store.pool_factor,
        **options,
    )
    manifest = backend.manifest()
    if manifest is None:
        return backend, wanted
    with _closed_on_error(backend):
        settled = _settled(manifest.get("config"), config, manifest, dense, colbert, trust_models)
    return backend, settled


__all__ = ["DATABASE_SCHEMES", "check_folder", "is_database_url", "open_database", "open_local"]
