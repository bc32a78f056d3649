"""The PostgreSQL tables of a collection, and the statements that write them.

Per collection ``c``::

    colrank_collections        name, manifest jsonb          (one row per collection)
    colrank_c_docs             iid, id, text, metadata jsonb, dense halfvec|vector (HNSW),
                               n_tokens, tokens bytea (STORAGE EXTERNAL), n_terms
    colrank_c_terms            term, iid, tf, n_terms        (BM25 postings; the primary key
                                                              covers tf and n_terms, so a
                                                              term's postings are read from
                                                              the index alone)
    colrank_c_stats            n_docs, total_terms           (BM25 corpus statistics)
    colrank_c_iid              a sequence: internal ids only grow

Table names come from a checked collection name (``[a-z][a-z0-9_]*``), never from
user text; every value is a bound parameter.

Example:
    >>> Tables("docs").docs
    'colrank_docs_docs'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from colrank.config import CODEC_NAMES_PATTERN
from colrank.errors import DimensionMismatchError, InvalidInputError
from colrank.store.base import DocumentRows, StoredDoc
from colrank.store.codecs import Codec

MANIFESTS = "colrank_collections"


@dataclass(frozen=True)
class Tables:
    """The names of one collection's tables."""

    collection: str

    @property
    def docs(self) -> str:
        """Documents."""
        return f"colrank_{self.collection}_docs"

    @property
    def terms(self) -> str:
        """BM25 postings."""
        return f"colrank_{self.collection}_terms"

    @property
    def stats(self) -> str:
        """BM25 corpus statistics (one row)."""
        return f"colrank_{self.collection}_stats"

    @property
    def seq(self) -> str:
        """Internal id sequence."""
        return f"colrank_{self.collection}_iid"

    @property
    def codec(self) -> str:
        """Trained token-codec parameters (one row)."""
        return f"colrank_{self.collection}_codec"


def configure(conn: Any) -> None:
    """Per connection: the pgvector types (the extension is created when missing)."""
    from pgvector.psycopg import register_vector

    conn.autocommit = True
    exists = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if exists is None:  # needs the privilege to create extensions (a DBA may do it instead)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    conn.autocommit = False


_CODECS = re.compile(CODEC_NAMES_PATTERN)


def check_codec_name(codec: str) -> None:
    """Refuse a codec name colrank does not know (before anything is written)."""
    if not _CODECS.fullmatch(codec):
        raise InvalidInputError(
            f"unknown token codec {codec!r}; use bfloat16, float16, float32, int8, pq<M> or opq<M>"
        )


def check_dims(manifest: dict[str, Any], dense_dim: int, colbert_dim: int) -> None:
    """Refuse vectors of other dimensions than the collection holds."""
    if (manifest["dense_dim"], manifest["colbert_dim"]) != (dense_dim, colbert_dim):
        raise DimensionMismatchError(
            f"this collection holds {manifest['dense_dim']}-d dense and "
            f"{manifest['colbert_dim']}-d token vectors, not {dense_dim} and {colbert_dim}; "
            "was it built with other models?"
        )


def read_manifest(conn: Any, collection: str) -> dict[str, Any] | None:
    """The collection's manifest, or None when it does not exist."""
    exists = conn.execute("SELECT to_regclass(%s)", [MANIFESTS]).fetchone()[0]
    if exists is None:
        return None
    row = conn.execute(
        f"SELECT manifest FROM {MANIFESTS} WHERE name = %s",
        [collection],
    ).fetchone()
    return None if row is None else dict(row[0])


def create_collection(
    conn: Any, collection: str, t: Tables, manifest: dict[str, Any], codec: Codec
) -> None:
    """Create the tables and the manifest row (once, even with concurrent first writers)."""
    from psycopg.types.json import Jsonb

    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"colrank:{collection}"])
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MANIFESTS} (name text PRIMARY KEY, manifest jsonb NOT NULL)"
    )
    if read_manifest(conn, collection) is not None:
        return
    dense = f"{manifest['dense_type']}({int(manifest['dense_dim'])})"
    ops = f"{manifest['dense_type']}_ip_ops"
    for statement in (
        f"CREATE SEQUENCE {t.seq}",
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
            PRIMARY KEY (term, iid) INCLUDE (tf, n_terms))""",
        f"CREATE INDEX ON {t.terms} (iid)",
        f"""CREATE TABLE {t.stats} (
            one integer PRIMARY KEY CHECK (one = 1),
            n_docs bigint NOT NULL,
            total_terms bigint NOT NULL)""",
        f"INSERT INTO {t.stats} VALUES (1, 0, 0)",
        f"CREATE INDEX ON {t.docs} USING hnsw (dense {ops}) WITH (m = 16, ef_construction = 64)",
        f"CREATE INDEX ON {t.docs} USING gin (metadata jsonb_path_ops)",
        f"CREATE TABLE {t.codec} (one integer PRIMARY KEY CHECK (one = 1), params bytea NOT NULL)",
    ):
        conn.execute(statement)
    write_codec_params(conn, t, codec)
    conn.execute(
        f"INSERT INTO {MANIFESTS} VALUES (%s, %s)",
        [collection, Jsonb(manifest)],
    )


def update_manifest(conn: Any, collection: str, update: dict[str, Any]) -> None:
    """Merge keys into the manifest row."""
    from psycopg.types.json import Jsonb

    conn.execute(
        f"UPDATE {MANIFESTS} SET manifest = manifest || %s WHERE name = %s",
        [Jsonb(update), collection],
    )


def write_codec_params(conn: Any, t: Tables, codec: Codec) -> None:
    """Store the codec's trained parameters (empty for codecs without any)."""
    conn.execute(
        f"INSERT INTO {t.codec} VALUES (1, %s) "
        "ON CONFLICT (one) DO UPDATE SET params = excluded.params",
        [codec.params_bytes()],
    )


def read_codec_params(conn: Any, t: Tables) -> bytes:
    """What :func:`write_codec_params` stored."""
    row = conn.execute(f"SELECT params FROM {t.codec}").fetchone()
    return b"" if row is None else bytes(row[0])


def drop_collection(conn: Any, collection: str, t: Tables) -> None:
    """Drop the tables and the manifest row."""
    for table in (t.terms, t.stats, t.codec, t.docs):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"DROP SEQUENCE IF EXISTS {t.seq}")
    if conn.execute("SELECT to_regclass(%s)", [MANIFESTS]).fetchone()[0] is not None:
        conn.execute(f"DELETE FROM {MANIFESTS} WHERE name = %s", [collection])


def delete_rows(conn: Any, t: Tables, iids: list[int]) -> None:
    """Delete documents (their postings go by cascade) and update the BM25 statistics."""
    if not iids:
        return
    removed = conn.execute(
        f"DELETE FROM {t.docs} WHERE iid = ANY(%s) RETURNING n_terms",
        [iids],
    ).fetchall()
    conn.execute(
        f"UPDATE {t.stats} SET n_docs = n_docs - %s, total_terms = total_terms - %s",
        [len(removed), sum(r[0] for r in removed)],
    )


def insert_rows(conn: Any, t: Tables, rows: DocumentRows, prepared: dict[str, Any]) -> None:
    """Insert documents and their postings with COPY; update the BM25 statistics."""
    from pgvector import HalfVector, Vector
    from psycopg.types.json import Jsonb

    wrap = HalfVector if prepared["dense_type"] == "halfvec" else Vector
    iids = [
        r[0]
        for r in conn.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)", [t.seq, len(rows)]
        ).fetchall()
    ]
    bags = prepared["bags"]
    with conn.cursor() as cur:
        columns = "iid, id, text, metadata, dense, n_tokens, tokens, n_terms"
        with cur.copy(f"COPY {t.docs} ({columns}) FROM STDIN") as copy:
            for i, iid in enumerate(iids):
                copy.write_row(
                    (
                        iid,
                        rows.ids[i],
                        rows.texts[i],
                        Jsonb(rows.metadatas[i]),
                        wrap(np.asarray(rows.vectors[i], dtype=np.float32)),
                        int(rows.tokens[i].shape[0]),
                        prepared["codes"][i],
                        int(sum(bags[i].values())),
                    )
                )
        with cur.copy(f"COPY {t.terms} (term, iid, tf, n_terms) FROM STDIN") as copy:
            for iid, bag in zip(iids, bags, strict=True):
                length = int(sum(bag.values()))  # kept beside each posting: no join to score
                for term, tf in bag.items():
                    copy.write_row((term, iid, float(tf), length))
    total = sum(sum(b.values()) for b in bags)
    conn.execute(
        f"UPDATE {t.stats} SET n_docs = n_docs + %s, total_terms = total_terms + %s",
        [len(rows), total],
    )


def analyze_if_grown(conn: Any, t: Tables) -> None:
    """ANALYZE the tables when they changed by a fifth since the last statistics.

    Right after a bulk load the planner has no statistics for the postings, guesses, and
    hash-joins the whole table instead of reading a query's few terms by key (measured:
    27 ms instead of 1.4 ms per BM25 query at 100k documents). Autovacuum catches up
    within a minute or so; this does it at once, and only after growth, so the cost is
    logarithmic in the collection size.
    """
    rows = conn.execute(
        "SELECT relname, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)",
        [[t.docs, t.terms]],
    ).fetchall()
    for name, changed, live in rows:
        if changed > 1000 and changed > 0.2 * live:
            conn.execute(f"ANALYZE {name}")


def fetch_docs_and_tokens(
    conn: Any, t: Tables, iids: list[int], codec: Codec
) -> tuple[list[StoredDoc], list[np.ndarray]]:
    """Documents and their decoded tokens, in the order of ``iids``."""
    rows = {
        r[0]: r
        for r in conn.execute(
            f"SELECT iid, id, text, metadata, tokens, n_tokens FROM {t.docs} WHERE iid = ANY(%s)",
            [iids],
        ).fetchall()
    }
    docs, tokens = [], []
    for iid in iids:
        _, doc_id, text, meta, blob, n = rows[iid]
        docs.append(StoredDoc(iid, doc_id, text, dict(meta)))
        codes = np.frombuffer(blob, dtype=np.uint8).reshape(n, codec.width)
        tokens.append(codec.decode(codes).numpy())
    return docs, tokens


def update_tokens(
    conn: Any, t: Tables, iids: list[int], tokens: list[np.ndarray], codec: Codec
) -> None:
    """Replace the stored tokens of ``iids``."""
    with conn.cursor() as cur:
        cur.executemany(
            f"UPDATE {t.docs} SET tokens = %s, n_tokens = %s WHERE iid = %s",
            [
                (codec.encode(np.asarray(x, dtype=np.float32)).tobytes(), len(x), iid)
                for iid, x in zip(iids, tokens, strict=True)
            ],
        )


__all__ = [
    "MANIFESTS",
    "check_codec_name",
    "check_dims",
    "Tables",
    "analyze_if_grown",
    "configure",
    "create_collection",
    "read_manifest",
]
