"""Where a collection's tables live: one server, or spread over several (``postgres_fdw``).

**One server**: the documents and postings tables are plain tables beside the
collection's small tables (statistics, document frequencies, codec, id sequence).

**Spread**: the server the backend connects to (the *coordinator*) keeps the small
tables and the manifest; the documents and postings tables become tables partitioned by
``HASH (iid)``, and each partition is a ``postgres_fdw`` foreign table on its own server
(a *shard*). A document and its postings share the internal id, so they live on the same
shard and the postings keep their foreign key there. The shards' tables and indexes
(HNSW, GIN, the postings' keys) are created through ``dblink`` with the same foreign
server definitions, so the coordinator's URL is all a later process needs. pgvector's
operators are shipped to the shards (the ``extensions 'vector'`` option), so each shard
runs its own HNSW search; BM25's statistics stay on the coordinator, collection-wide.

Example:
    >>> [s["server"] for s in shard_entries("docs", ["postgresql://a:1/db", "postgresql://b:2/db"])]
    ['colrank_docs_s0', 'colrank_docs_s1']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colrank.errors import InvalidInputError
from colrank.store.base import DocumentRows
from colrank.store.bm25 import saturation_sql
from colrank.store.codecs import make_codec
from colrank.store.postgres.hnsw import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    auto_ef_search,
    shard_session_options,
)
from colrank.store.postgres.schema import MANIFESTS, Tables, write_codec_params


def shard_entries(collection: str, urls: list[str]) -> list[dict[str, Any]]:
    """The manifest's description of each shard: server name and its libpq settings."""
    from psycopg.conninfo import conninfo_to_dict

    entries = []
    for i, url in enumerate(urls):
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidInputError(f"shard {i}: {url!r} is not a postgresql:// URL")
        params = conninfo_to_dict(url)
        if "," in str(params.get("host", "")):
            raise InvalidInputError(f"shard {i}: one host per shard, not {params['host']!r}")
        entries.append(
            {
                "server": Tables(collection).server(i),
                "host": str(params.get("host") or "localhost"),
                "port": str(params.get("port") or "5432"),
                "dbname": str(params.get("dbname") or params.get("user") or "postgres"),
                "user": params.get("user"),
                "password": params.get("password"),
            }
        )
    return entries


def _shard_tables_sql(t: Tables, dense: str, ops: str) -> list[str]:
    """The documents and postings tables, as on one server (run on each shard)."""
    return [
        f"""CREATE TABLE {t.docs} (
            iid bigint PRIMARY KEY,
            id text NOT NULL UNIQUE,
            text text NOT NULL,
            metadata jsonb NOT NULL,
            dense {dense} NOT NULL,
            n_tokens integer NOT NULL,
            tokens bytea NOT NULL,
            n_terms integer NOT NULL)""",
        f"ALTER TABLE {t.docs} ALTER COLUMN tokens SET STORAGE EXTERNAL",
        f"""CREATE TABLE {t.terms} (
            term text NOT NULL,
            iid bigint NOT NULL REFERENCES {t.docs} (iid) ON DELETE CASCADE,
            tf real NOT NULL,
            n_terms integer NOT NULL,
            impact real NOT NULL,
            PRIMARY KEY (term, iid) INCLUDE (tf, n_terms))""",
        f"CREATE INDEX ON {t.terms} (iid)",
        f"CREATE INDEX {t.impacts} ON {t.terms} (term, impact DESC, iid) INCLUDE (tf, n_terms)",
        f"CREATE INDEX ON {t.docs} USING hnsw (dense {ops}) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})",
        f"CREATE INDEX ON {t.docs} USING gin (metadata jsonb_path_ops)",
    ]


def _small_tables_sql(t: Tables) -> list[str]:
    """The coordinator's (or the one server's) collection-wide tables."""
    return [
        f"CREATE SEQUENCE {t.seq}",
        f"""CREATE TABLE {t.stats} (
            one integer PRIMARY KEY CHECK (one = 1),
            n_docs bigint NOT NULL,
            total_terms bigint NOT NULL)""",
        f"INSERT INTO {t.stats} VALUES (1, 0, 0)",
        f"CREATE TABLE {t.df} (term text PRIMARY KEY, df bigint NOT NULL)",
        f"CREATE TABLE {t.codec} (one integer PRIMARY KEY CHECK (one = 1), params bytea NOT NULL)",
    ]


def create_for(
    conn: Any,
    collection: str,
    rows: DocumentRows,
    prepared: dict[str, Any],
    models: dict[str, str | None],
    settings: dict[str, Any],
) -> None:
    """Create the collection for its first batch (codec trained on it, BM25 reference)."""
    manifest = {
        "format": "colrank-collection",
        "dense_dim": int(rows.vectors.shape[1]),
        "colbert_dim": int(prepared["colbert_dim"]),
        **models,
        # BM25 reads postings best-first by their weight under this length (fixed)
        "bm25_reference_length": max(
            sum(sum(bag.values()) for bag in prepared["bags"]) / len(rows), 1.0
        ),
        **settings,
    }
    codec = make_codec(manifest["codec"], manifest["colbert_dim"])
    if not codec.trained:  # trained once, at creation, before any parallel writer
        codec.fit(np.concatenate([np.asarray(t, np.float32) for t in rows.tokens]))
    create(conn, collection, manifest, codec)


def create(conn: Any, collection: str, manifest: dict[str, Any], codec: Any) -> None:
    """Create the collection's tables and manifest row (once, even with racing writers)."""
    from psycopg.types.json import Jsonb

    from colrank.store.postgres.schema import read_manifest

    t = Tables(collection)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank:{collection}"])
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MANIFESTS} (name text PRIMARY KEY, manifest jsonb NOT NULL)"
    )
    if read_manifest(conn, collection) is not None:
        return
    dense = f"{manifest['dense_type']}({int(manifest['dense_dim'])})"
    ops = f"{manifest['dense_type']}_ip_ops"
    shards = manifest.get("shards") or []
    statements = _small_tables_sql(t)
    if not shards:
        statements = [*statements, *_shard_tables_sql(t, dense, ops)]
    for statement in statements:
        conn.execute(statement)
    if shards:
        _create_spread(conn, t, shards, dense, ops)
    write_codec_params(conn, t, codec)
    public = {**manifest, "shards": [_public(s) for s in shards]}
    conn.execute(f"INSERT INTO {MANIFESTS} VALUES (%s, %s)", [collection, Jsonb(public)])


def _public(shard: dict[str, Any]) -> dict[str, Any]:
    """A shard as the manifest keeps it: no user or password (they live in the mapping)."""
    return {k: shard[k] for k in ("server", "host", "port", "dbname")}


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _create_spread(
    conn: Any, t: Tables, shards: list[dict[str, Any]], dense: str, ops: str
) -> None:
    """Foreign servers, user mappings, the shards' tables and the partitioned parents."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
    conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    remote = [
        f"DROP TABLE IF EXISTS {t.terms}",  # left by a creation that failed half-way
        f"DROP TABLE IF EXISTS {t.docs}",
        "CREATE EXTENSION IF NOT EXISTS vector",
        *_shard_tables_sql(t, dense, ops),
    ]
    conn.execute(
        f"CREATE TABLE {t.docs} (iid bigint NOT NULL, id text NOT NULL, text text NOT NULL, "
        f"metadata jsonb NOT NULL, dense {dense} NOT NULL, n_tokens integer NOT NULL, "
        "tokens bytea NOT NULL, n_terms integer NOT NULL) PARTITION BY HASH (iid)"
    )
    conn.execute(
        f"CREATE TABLE {t.terms} (term text NOT NULL, iid bigint NOT NULL, tf real NOT NULL, "
        "n_terms integer NOT NULL, impact real NOT NULL) PARTITION BY HASH (iid)"
    )
    settings = shard_session_options(auto_ef_search(0))  # raised as the shards fill
    for i, shard in enumerate(shards):
        server = shard["server"]
        conn.execute(f"DROP SERVER IF EXISTS {server} CASCADE")
        options = {
            "host": shard["host"],
            "port": shard["port"],
            "dbname": shard["dbname"],
            "extensions": "vector",
            "fetch_size": "1000",
            "batch_size": "1000",
            "async_capable": "true",
            "connect_timeout": "2",
            "options": settings,
        }
        listed = ", ".join(f"{k} {_literal(v)}" for k, v in options.items())
        conn.execute(f"CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({listed})")
        login = {k: shard[k] for k in ("user", "password") if shard.get(k)}
        mapping = ", ".join(f"{k} {_literal(v)}" for k, v in login.items())
        conn.execute(
            f"CREATE USER MAPPING FOR CURRENT_USER SERVER {server}"
            + (f" OPTIONS ({mapping})" if mapping else "")
        )
        for statement in remote:
            conn.execute("SELECT dblink_exec(%s, %s)", [server, statement])
        bounds = f"FOR VALUES WITH (MODULUS {len(shards)}, REMAINDER {i})"
        for parent, part in ((t.docs, t.docs_on(i)), (t.terms, t.terms_on(i))):
            conn.execute(
                f"CREATE FOREIGN TABLE {part} PARTITION OF {parent} {bounds} "
                f"SERVER {server} OPTIONS (table_name {_literal(parent)})"
            )


def drop(conn: Any, collection: str, manifest: dict[str, Any] | None) -> None:
    """Drop the tables (on the shards too), the foreign servers and the manifest row."""
    t = Tables(collection)
    for shard in (manifest or {}).get("shards") or []:
        for table in (t.terms, t.docs):
            conn.execute(
                "SELECT dblink_exec(%s, %s)", [shard["server"], f"DROP TABLE IF EXISTS {table}"]
            )
    for table in (t.terms, t.stats, t.codec, t.df, t.docs):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for shard in (manifest or {}).get("shards") or []:
        conn.execute(f"DROP SERVER IF EXISTS {shard['server']} CASCADE")
    conn.execute(f"DROP SEQUENCE IF EXISTS {t.seq}")
    if conn.execute("SELECT to_regclass(%s)", [MANIFESTS]).fetchone()[0] is not None:
        conn.execute(f"DELETE FROM {MANIFESTS} WHERE name = %s", [collection])


def upgrade(conn: Any, collection: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Bring a format-1 collection (one server, no impacts or document frequencies) to 2."""
    from colrank.store.postgres.schema import read_manifest, update_manifest

    if int(manifest.get("format_version", 1)) >= 2:
        return manifest
    t = Tables(collection)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank:{collection}"])
    manifest = read_manifest(conn, collection) or manifest
    if int(manifest.get("format_version", 1)) >= 2:  # another process did it meanwhile
        return manifest
    n_docs, total = conn.execute(f"SELECT n_docs, total_terms FROM {t.stats}").fetchone()
    reference = max(float(total) / max(int(n_docs), 1), 1.0)
    conn.execute(f"ALTER TABLE {t.terms} ADD COLUMN impact real")
    impact = saturation_sql("tf", "n_terms", repr(float(reference)))  # as schema.impacts
    conn.execute(f"UPDATE {t.terms} SET impact = {impact}")
    conn.execute(f"ALTER TABLE {t.terms} ALTER COLUMN impact SET NOT NULL")
    conn.execute(
        f"CREATE INDEX {t.impacts} ON {t.terms} (term, impact DESC, iid) INCLUDE (tf, n_terms)"
    )
    conn.execute(f"CREATE TABLE {t.df} (term text PRIMARY KEY, df bigint NOT NULL)")
    conn.execute(f"INSERT INTO {t.df} SELECT term, count(*) FROM {t.terms} GROUP BY term")
    update = {"format_version": 2, "bm25_reference_length": reference, "shards": []}
    update_manifest(conn, collection, update)
    return {**manifest, **update}


__all__ = [
    "create",
    "create_for",
    "drop",
    "shard_entries",
    "upgrade",
]
