"""pgvector HNSW settings: the graph of a new collection, and ``ef_search`` by size.

Recall at a fixed ``hnsw.ef_search`` falls as the graph grows, so a search asks for a
candidate list that follows the collection's size; a shard's sessions get theirs through
its foreign server's connection options (a ``SET`` on the coordinator does not reach them).

Example:
    >>> [auto_ef_search(n) for n in (10_000, 500_000, 5_000_000)]
    [200, 500, 1000]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the schema module imports this one
    from colrank.store.postgres.schema import Tables

#: the HNSW graph of a new collection: at 1M real-shaped 384-d vectors m 16 /
#: ef_construction 64 reached recall@100 0.880 at ef_search 1000, m 32 / 128 0.978
#: (3x the build time; docs/benchmarks.md)
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 128

#: HNSW's candidate list by collection size when ``ef_search`` is not given: recall at a
#: fixed ef_search falls as the graph grows (real-shaped 384-d vectors, m 32: 0.969 at
#: 100k with 200, 0.978 at 1M with 1000; docs/benchmarks.md), pgvector's limit is 1000
EF_SEARCH_MIN, EF_SEARCH_MAX, DOCS_PER_EF = 200, 1000, 1000
AUTO_EF_SEARCH_SQL = f"least({EF_SEARCH_MAX}, greatest({EF_SEARCH_MIN}, {{n}} / {DOCS_PER_EF}))"


def auto_ef_search(n_docs: int) -> int:
    """The ``hnsw.ef_search`` for a graph of ``n_docs`` (as :data:`AUTO_EF_SEARCH_SQL`)."""
    return min(EF_SEARCH_MAX, max(EF_SEARCH_MIN, int(n_docs) // DOCS_PER_EF))


def shard_session_options(ef_search: int) -> str:
    """A shard's session settings, sent with each ``postgres_fdw`` connection's options.

    A ``SET`` on the coordinator does not reach the shards' sessions; changing a foreign
    server's options makes ``postgres_fdw`` reconnect with the new ones.
    """
    return f"-c hnsw.ef_search={ef_search} -c hnsw.iterative_scan=strict_order"


def tune_shards(conn: Any, t: Tables, shards: int, n_docs: int) -> None:
    """Give each shard the ef_search its share of ``n_docs`` documents needs."""
    options = shard_session_options(auto_ef_search(n_docs // max(shards, 1)))
    for i in range(shards):
        conn.execute(f"ALTER SERVER {t.server(i)} OPTIONS (SET options '{options}')")


__all__ = [
    "AUTO_EF_SEARCH_SQL",
    "EF_SEARCH_MAX",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "auto_ef_search",
    "shard_session_options",
    "tune_shards",
]
