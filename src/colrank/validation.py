"""Checks on user input, each raising a specific :mod:`colrank.errors` type.

Example:
    >>> check_query("  what is colbert? ")
    'what is colbert?'
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from colrank.errors import (
    DuplicateIdError,
    EmptyCorpusError,
    EmptyQueryError,
    InvalidFilterError,
    InvalidInputError,
)
from colrank.metadata import to_json_metadata
from colrank.results import Document
from colrank.storable import check_storable

MAX_QUERY_CHARS = 4096
"""Longer queries are cut here, with a warning: the ColBERT query keeps 32 tokens and the
dense encoder 256, so the rest would only slow BM25 down."""


def check_query(query: Any) -> str:
    """A non-empty string query, stripped (and cut at :data:`MAX_QUERY_CHARS`, warned)."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, not {type(query).__name__}")
    stripped = query.strip()
    if not stripped:
        raise EmptyQueryError("query is empty; pass a question or keywords to search for")
    check_storable(stripped, "the query")
    if len(stripped) > MAX_QUERY_CHARS:
        warnings.warn(
            f"query of {len(stripped)} characters cut to {MAX_QUERY_CHARS}; the encoders keep "
            "far fewer tokens anyway",
            stacklevel=3,
        )
        stripped = stripped[:MAX_QUERY_CHARS]
    return stripped


def check_queries(queries: Any) -> list[str]:
    """A list of non-empty string queries."""
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InvalidInputError("queries must be a list of strings")
    return [check_query(q) for q in queries]


def check_k(k: Any, name: str = "k") -> int:
    """A positive integer."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InvalidInputError(f"{name} must be a positive integer, not {k!r}")
    return k


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of a few named options (``missing="error"``, ...)."""
    if not isinstance(value, str) or value not in choices:
        listed = " or ".join(repr(c) for c in choices)
        raise InvalidInputError(f"{name} must be {listed}, not {value!r}")
    return value


def check_fraction(value: Any, name: str) -> float:
    """A number in [0, 1] (a weight)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidInputError(f"{name} must be a number between 0 and 1, not {value!r}")
    return float(value)


def check_candidates(candidates: Any, k: int) -> int:
    """A candidate count of at least k."""
    candidates = check_k(candidates, "candidates")
    if candidates < k:
        raise InvalidInputError(
            f"candidates ({candidates}) must be >= k ({k}): the reranker can only return "
            "documents that the first stage recalled"
        )
    return candidates


def recall_depth(candidates: int, k: int) -> int:
    """The candidates a framework face recalls: its setting, raised to ``k`` when smaller.

    The core refuses ``candidates < k`` (a caller's mistake); a face whose users change
    ``k`` per call (``search_kwargs``, ``similarity_top_k``) raises the depth instead.
    """
    return max(check_k(candidates, "candidates"), check_k(k))


def check_texts(texts: Any) -> list[str]:
    """A non-empty list of non-empty strings."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError("texts must be a list of strings (wrap a single text in a list)")
    if len(texts) == 0:
        raise EmptyCorpusError("no texts given; pass at least one document")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] is a {type(text).__name__}, not a string")
        if not text.strip():
            raise InvalidInputError(f"texts[{i}] is empty; remove empty documents before adding")
        check_storable(text, f"texts[{i}]")
    return list(texts)


def check_metadatas(metadatas: Any, n: int) -> list[dict[str, Any]]:
    """One dict per text (None: empty dicts), converted to JSON (:mod:`colrank.metadata`)."""
    if metadatas is None:
        return [{} for _ in range(n)]
    if isinstance(metadatas, dict) or not isinstance(metadatas, Sequence) or len(metadatas) != n:
        raise InvalidInputError(f"metadatas must be a list of {n} dicts, one per text")
    out = []
    for i, meta in enumerate(metadatas):
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise InvalidInputError(f"metadatas[{i}] is a {type(meta).__name__}, not a dict")
        out.append(to_json_metadata(meta, f"metadatas[{i}]"))
    return out


def check_ids(ids: Any, n: int) -> list[str]:
    """``n`` unique string ids."""
    if isinstance(ids, str) or not isinstance(ids, Sequence) or len(ids) != n:
        raise InvalidInputError(f"ids must be a list of {n} strings, one per text")
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidInputError(f"ids[{i}] must be a non-empty string, not {doc_id!r}")
        check_storable(doc_id, f"ids[{i}]")
    repeated = [doc_id for doc_id, count in Counter(ids).items() if count > 1]
    if repeated:
        raise DuplicateIdError(f"ids repeat within this call: {repeated[:5]}")
    return list(ids)


def check_id_list(ids: Any) -> list[str]:
    """A list of string ids; a bare string is refused (it would be read as characters)."""
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise InvalidInputError(
            f"ids must be a list of strings, not {type(ids).__name__} (wrap a single id in a list)"
        )
    bad = [i for i in ids if not isinstance(i, str)]
    if bad:
        raise InvalidInputError(f"ids must be strings; got {bad[:3]!r}")
    for i, doc_id in enumerate(ids):
        check_storable(doc_id, f"ids[{i}]")
    return list(ids)


def check_list(values: Any, what: str) -> list[Any]:
    """Any iterable of items as a list; a bare string (or bytes) is refused.

    For the framework faces, whose base classes declare ``Iterable`` / ``Sequence`` of
    ids or texts: iterating ``"ab"`` would give the ids ``"a"`` and ``"b"``.
    """
    if isinstance(values, (str, bytes)):
        raise InvalidInputError(
            f"{what} must be a list, not a bare string {values[:40]!r} (wrap a single one in "
            "a list)"
        )
    try:
        return list(values)
    except TypeError:
        raise InvalidInputError(f"{what} must be a list, not {type(values).__name__}") from None


def check_filter(spec: Any) -> Mapping[str, Any] | None:
    """A filter dict, or None for no filter (``{}`` means no filter too)."""
    if spec is not None and not isinstance(spec, Mapping):
        raise InvalidFilterError(f"filter must be a dict, not {type(spec).__name__}")
    return spec or None


def check_documents(documents: Any) -> list[Document]:
    """Documents to rerank: strings, :class:`Document` objects or ``{"text", "id", "metadata"}``."""
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise InvalidInputError("documents must be a list of strings or Document objects")
    return [_as_document(item, position) for position, item in enumerate(documents)]


def _as_document(item: Any, position: int) -> Document:
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, str):
        doc = Document(item)
    elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
        doc = Document(item["text"], item.get("id"), dict(item.get("metadata") or {}))
    else:
        raise InvalidInputError(
            f"documents[{position}] is a {type(item).__name__}; pass strings or colrank.Document"
        )
    if not isinstance(doc.text, str):
        raise InvalidInputError(f"documents[{position}].text is not a string")
    check_storable(doc.text, f"documents[{position}].text")
    return doc


__all__ = [
    "MAX_QUERY_CHARS",
    "check_documents",
    "check_candidates",
    "check_choice",
    "check_fraction",
    "check_filter",
    "check_id_list",
    "check_ids",
    "check_k",
    "check_list",
    "check_metadatas",
    "check_queries",
    "check_query",
    "check_texts",
    "recall_depth",
]
