"""The PostgreSQL tables of a collection, and the statements that write them.

Per collection ``c``::

    colrank_collections        name, manifest jsonb          (one row per collection)
    colrank_c_docs             iid, id, text, metadata jsonb, dense halfvec|vector (HNSW),
                               n_tokens, tokens bytea (STORAGE EXTERNAL), n_terms
    colrank_c_terms            term, iid, tf, n_terms, impact (BM25 postings; the primary
                                                              key covers tf and n_terms, and
                                                              an index by (term, impact desc)
                                                              serves BM25's top-k)
    colrank_c_stats            n_docs, total_terms           (BM25 corpus statistics)
    colrank_c_df               term, df                      (BM25 document frequencies)
    colrank_c_codec            the token codec's trained parameters
    colrank_c_iid              a sequence: internal ids only grow

On a spread collection the documents and postings tables are partitioned over other
servers (:mod:`colrank.store.postgres.layout`); the others stay where the manifest is.

Table names come from a checked collection name (``[a-z][a-z0-9_]*``), never from
user text; every value is a bound parameter.

Example:
    >>> Tables("docs").docs
    'colrank_docs_docs'
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from colrank.errors import DimensionMismatchError, InvalidInputError
from colrank.index_settings import CODEC_NAMES_PATTERN
from colrank.store.base import DocumentRows, StoredDoc
from colrank.store.codecs import Codec
from colrank.store.postgres.hnsw import tune_shards

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

    @property
    def df(self) -> str:
        """BM25 document frequency per term (collection-wide)."""
        return f"colrank_{self.collection}_df"

    @property
    def impacts(self) -> str:
        """The postings' index by term and impact (BM25's top-k reads it in order)."""
        return f"colrank_{self.collection}_impacts"

    def server(self, shard: int) -> str:
        """The foreign server (``postgres_fdw``) of ``shard`` on the coordinator."""
        return f"colrank_{self.collection}_s{shard}"

    def docs_on(self, shard: int) -> str:
        """The documents partition held by ``shard`` (a foreign table)."""
        return f"{self.docs}_s{shard}"

    def terms_on(self, shard: int) -> str:
        """The postings partition held by ``shard`` (a foreign table)."""
        return f"{self.terms}_s{shard}"


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


def impacts(tf: np.ndarray, lengths: np.ndarray, reference: float) -> np.ndarray:
    """Each posting's BM25 term weight under the collection's reference length.

    The postings are read best-first in this order (BM25's top-k); the scores returned
    are always exact, computed with the collection's statistics at query time. The
    reference length is fixed when the collection is made, so a posting's impact never
    changes and the index stays valid as the collection grows.
    """
    from colrank.store.bm25 import saturation

    tf = np.asarray(tf, dtype=np.float64)
    return saturation(tf, np.asarray(lengths), reference).astype(np.float32)


def delete_rows(conn: Any, t: Tables, iids: list[int]) -> None:
    """Delete documents and their postings; update the BM25 statistics and frequencies."""
    if not iids:
        return
    terms = Counter(
        r[0]
        for r in conn.execute(
            f"DELETE FROM {t.terms} WHERE iid = ANY(%s) RETURNING term", [iids]
        ).fetchall()
    )
    removed = conn.execute(
        f"DELETE FROM {t.docs} WHERE iid = ANY(%s) RETURNING n_terms",
        [iids],
    ).fetchall()
    conn.execute(
        f"UPDATE {t.stats} SET n_docs = n_docs - %s, total_terms = total_terms - %s",
        [len(removed), sum(r[0] for r in removed)],
    )
    _add_frequencies(conn, t, {term: -n for term, n in terms.items()})


def _add_frequencies(conn: Any, t: Tables, change: dict[str, int]) -> None:
    """Add to each term's document frequency (terms in sorted order: no lock cycles)."""
    if not change:
        return
    terms = sorted(change)
    conn.execute(
        f"INSERT INTO {t.df} AS f (term, df) SELECT * FROM unnest(%s::text[], %s::bigint[]) "
        "ON CONFLICT (term) DO UPDATE SET df = f.df + excluded.df",
        [terms, [change[k] for k in terms]],
    )
    if any(v < 0 for v in change.values()):
        conn.execute(f"DELETE FROM {t.df} WHERE term = ANY(%s) AND df <= 0", [terms])


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in COPY's text format (backslash, tab and line ends escaped)."""
    return value.translate(_COPY_ESCAPES)


def insert_rows(conn: Any, t: Tables, rows: DocumentRows, prepared: dict[str, Any]) -> None:
    """Insert documents and postings with COPY; update the BM25 statistics and frequencies."""
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
    lengths = [int(sum(bag.values())) for bag in bags]
    columns = "iid, id, text, metadata, dense, n_tokens, tokens, n_terms"
    types = ["bigint", "text", "text", "jsonb", prepared["dense_type"], "integer", "bytea"]
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {t.docs} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
    ):  # binary: no text form of the vectors, no hex form of the token codes
        copy.set_types([*types, "integer"])
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
                    lengths[i],
                )
            )
    # the postings as one block of COPY text: a Python call per posting cost more
    counts = [len(bag) for bag in bags]
    tfs = np.fromiter((tf for bag in bags for tf in bag.values()), np.float64, sum(counts))
    per_posting = np.repeat(np.asarray(lengths, dtype=np.int64), counts)
    weights = iter(impacts(tfs, per_posting, prepared["reference"]).tolist())
    lines = [
        f"{_copy_text(term)}\t{iid}\t{tf}\t{length}\t{next(weights)!r}\n"
        for iid, bag, length in zip(iids, bags, lengths, strict=True)
        for term, tf in bag.items()
    ]
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {t.terms} (term, iid, tf, n_terms, impact) FROM STDIN") as copy,
    ):
        copy.write("".join(lines).encode())
    conn.execute(
        f"UPDATE {t.stats} SET n_docs = n_docs + %s, total_terms = total_terms + %s",
        [len(rows), sum(lengths)],
    )
    _add_frequencies(conn, t, dict(Counter(term for bag in bags for term in bag)))


def analyze_if_grown(conn: Any, t: Tables, shards: int = 0) -> None:
    """ANALYZE the tables when they changed by a fifth since the last statistics.

    Right after a bulk load the planner has no statistics for the postings, guesses, and
    hash-joins the whole table instead of reading a query's few terms by key (measured:
    27 ms instead of 1.4 ms per BM25 query at 100k documents). Autovacuum catches up
    within a minute or so; this does it at once, and only after growth, so the cost is
    logarithmic in the collection size. On a spread collection the shards' autovacuum
    keeps their own statistics; the coordinator's statistics of its foreign partitions
    (a sample read from each shard) tell its planner how many postings a term has, so it
    sends a frequent term's ``ORDER BY impact DESC LIMIT`` to the shard instead of
    reading every posting.
    """
    if shards:
        docs = [t.docs_on(i) for i in range(shards)]
        parts = [*docs, *(t.terms_on(i) for i in range(shards))]
        n_docs, known = conn.execute(
            f"SELECT (SELECT n_docs FROM {t.stats}), (SELECT sum(greatest(reltuples, 0)) "
            "FROM pg_class WHERE relname = ANY(%s))",
            [docs],
        ).fetchone()
        if n_docs > 1000 and n_docs > 1.2 * float(known or 0):
            for name in parts:
                conn.execute(f"ANALYZE {name}")
            tune_shards(conn, t, shards, n_docs)
        return
    rows = conn.execute(
        "SELECT relname, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)",
        [[t.docs, t.terms]],
    ).fetchall()
    for name, changed, live in rows:
        if changed > 1000 and changed > 0.2 * live:
            conn.execute(f"ANALYZE {name}")


def prepare_rows(rows: DocumentRows, bm25: Any) -> dict[str, Any]:
    """Split the texts into BM25 terms before the write's transaction (no lock is held)."""
    dims = {t.shape[1] if t.ndim == 2 else -1 for t in rows.tokens}
    if len(dims) != 1 or rows.vectors.ndim != 2:
        raise DimensionMismatchError("token embeddings of one batch differ in dimension")
    bags = [Counter(tokens) for tokens in bm25.tokenize(rows.texts)]
    return {"bags": bags, "colbert_dim": dims.pop()}


def collection_sizes(conn: Any, t: Tables) -> dict[str, int]:
    """Documents, tokens and token bytes (one pass over the documents)."""
    docs, tokens, token_bytes = conn.execute(
        f"SELECT count(*), coalesce(sum(n_tokens), 0), "
        f"coalesce(sum(octet_length(tokens)), 0) FROM {t.docs}"
    ).fetchone()
    return {"documents": int(docs), "tokens": int(tokens), "token_bytes": int(token_bytes)}


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
    "impacts",
    "read_manifest",
]
