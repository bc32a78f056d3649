r"""Strings every backend can store: no NUL character, no lone surrogate.

PostgreSQL cannot hold a NUL (``\x00``) in ``text`` or ``jsonb``, and a lone surrogate
(``"\ud800"``) is not text at all: it has no UTF-8 form, so no backend stores it and no
tokenizer reads it. colrank refuses both at its public boundary, in every string that is
stored or searched (texts, ids, metadata keys and values at any depth, filter keys and
values, queries, documents to rerank), with :class:`~colrank.errors.InvalidInputError`
(or the subclass the caller names), before anything reaches a backend. So both backends
give the same answer, and a refused call changes nothing.

Example:
    >>> check_storable("bread", "a query")
    'bread'
    >>> check_storable("a\x00b", "ids[0]")
    Traceback (most recent call last):
    ...
    colrank.errors.InvalidInputError: ids[0] holds a NUL character at position 1, ...
"""

from __future__ import annotations

from colrank.errors import InvalidInputError


def check_storable(text: str, what: str, error: type[InvalidInputError] = InvalidInputError) -> str:
    """``text`` unchanged if a backend can store it; else ``error`` saying where it is not."""
    nul = text.find("\x00")
    if nul >= 0:
        raise error(
            f"{what} holds a NUL character at position {nul}, which a database cannot "
            "store; remove it (e.g. text.replace('\\x00', ''))"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"{what} holds a lone surrogate ({text[exc.start]!r} at position {exc.start}), "
            "which is not text; decode your input with errors='replace' first"
        ) from None
    return text


__all__ = ["check_storable"]
