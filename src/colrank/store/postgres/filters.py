"""The filter language (:mod:`colrank.store.filters`) compiled to PostgreSQL over ``jsonb``.

The same tree the local backend compiles to SQLite, with the same meaning: a value
matches a stored value of its own JSON kind only (``jsonb_typeof``), text compares
byte-wise (``COLLATE "C"``, as SQLite does), numbers compare as ``numeric`` (exact for
big integers), ``$ne`` / ``$nin`` also match documents without the field, and a JSON
``null`` counts as absent. Field names and values are always bound parameters.

Example:
    >>> where, params = compile_pg_filter({"year": {"$gte": 2020}})
    >>> "jsonb_typeof" in where, params
    (True, ['year', 'year', 2020])
"""

from __future__ import annotations

from typing import Any

from colrank.store.filters import Compare, Exists, Expr, Filter, Junction, kind_of, parse

_OPS = {"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_CASTS = {"number": "::numeric", "string": "", "boolean": "::boolean"}


def _typed_value(field: str, kind: str, params: list[Any]) -> str:
    """The field's value as SQL of ``kind``, NULL when it holds another kind (or nothing).

    A CASE, not ``typeof = kind AND cast``: SQL does not promise to skip the cast when the
    first half is false, and casting text to a number would raise.
    """
    params.extend([field, field])
    collate = ' COLLATE "C"' if kind == "string" else ""
    return (
        f"(CASE WHEN jsonb_typeof(metadata -> %s) = '{kind}' "
        f"THEN (metadata ->> %s){_CASTS[kind]} END){collate}"
    )


def _pg(expr: Expr, params: list[Any]) -> str:
    if isinstance(expr, Junction):
        joined = f" {expr.kind.upper()} ".join(f"({_pg(p, params)})" for p in expr.parts)
        return f"({joined})"
    if isinstance(expr, Exists):
        params.append(expr.field)
        present = "coalesce(jsonb_typeof(metadata -> %s), 'null') <> 'null'"
        return present if expr.present else f"NOT ({present})"
    if isinstance(expr, Compare):
        kind = kind_of(expr.value)
        value = _typed_value(expr.field, kind, params)
        params.append(expr.value)
        match = f"{value} {_OPS[expr.op]} %s{_CASTS[kind]}"
        return f"NOT coalesce({match}, false)" if expr.op == "$ne" else f"coalesce({match}, false)"
    ors = []
    for kind in dict.fromkeys(kind_of(v) for v in expr.values):  # each kind matches its own
        group = [v for v in expr.values if kind_of(v) == kind]
        value = _typed_value(expr.field, kind, params)
        params.extend(group)
        ors.append(f"{value} IN ({', '.join(f'%s{_CASTS[kind]}' for _ in group)})")
    match = f"coalesce(({' OR '.join(ors)}), false)"
    return f"NOT {match}" if expr.negate else match


def pg_kind_probe(docs_table: str, field: str, kinds: tuple[str, ...]) -> tuple[str, list[Any]]:
    """SQL for :data:`~colrank.store.filters.KindProbe` (``field`` held as one of ``kinds``)."""
    sql = f"SELECT 1 FROM {docs_table} WHERE jsonb_typeof(metadata -> %s) = ANY(%s) LIMIT 1"
    return sql, [field, list(kinds)]  # the table name is colrank's own


def compile_pg_filter(spec: Filter | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` expression over the ``metadata`` column, and its parameters."""
    expr = parse(spec) if spec else None
    if expr is None:
        return "true", []
    params: list[Any] = []
    return _pg(expr, params), params


__all__ = ["compile_pg_filter", "pg_kind_probe"]
