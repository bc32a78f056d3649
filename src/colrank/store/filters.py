"""Metadata filters: a small Mongo-style dict language, compiled to SQLite.

A filter is a mapping from metadata field to a value (equality) or to an operator
dict; ``$and`` / ``$or`` combine filters. Supported operators: ``$eq $ne $gt $gte
$lt $lte $in $nin $exists``. This is the format LangChain vector stores take, and
LlamaIndex ``MetadataFilters`` are translated to it by the LlamaIndex face.

Example:
    >>> where, params = compile_filter({"year": {"$gte": 2020}, "lang": "en"})
    >>> where.count("json_extract"), params
    (2, [2020, 'en'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from colrank.errors import InvalidFilterError

Filter = Mapping[str, Any]

_COMPARE = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_SCALARS = (str, int, float, bool)


def _path(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidFilterError(f"filter field names must be non-empty strings, not {name!r}")
    quoted = json.dumps(name).replace("'", "''")
    return f"'$.{quoted}'"


def _field(name: str) -> str:
    return f"json_extract(metadata, {_path(name)})"


def _scalar(value: Any, op: str) -> Any:
    if value is None or not isinstance(value, _SCALARS):
        raise InvalidFilterError(
            f"{op} takes a string, number or boolean, not {type(value).__name__}"
        )
    return value


_KINDS = {bool: "('true', 'false')", int: "('integer', 'real')", str: "('text')"}


def _kind(value: Any) -> type:
    return bool if isinstance(value, bool) else int if isinstance(value, (int, float)) else str


def _typed(field: str, value: Any) -> str:
    """SQL: the field holds a JSON value of ``value``'s kind (boolean, number or text).

    json_extract gives 1/0 for JSON booleans and SQLite orders text above every number,
    so without this ``True`` would match ``1`` and ``"2000"`` would be above ``2021``.
    """
    return f"json_type(metadata, {_path(field)}) IN {_KINDS[_kind(value)]}"


def _condition(field: str, spec: Any, params: list[Any]) -> str:
    column = _field(field)
    if not isinstance(spec, Mapping):
        spec = {"$eq": spec}
    if not spec:
        raise InvalidFilterError(f"empty operator dict for field {field!r}")
    parts = []
    for op, value in spec.items():
        if op in _COMPARE:
            params.append(_scalar(value, op))
            if op == "$ne":
                parts.append(f"({column} IS NULL OR NOT ({_typed(field, value)}) OR {column} != ?)")
                continue
            parts.append(f"({_typed(field, value)} AND {column} {_COMPARE[op]} ?)")
        elif op in ("$in", "$nin"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
                raise InvalidFilterError(f"{op} takes a non-empty list, not {value!r}")
            scalars = [_scalar(v, op) for v in value]
            ors = []
            for kind in dict.fromkeys(_kind(v) for v in scalars):  # each kind matches its own
                group = [v for v in scalars if _kind(v) is kind]
                params.extend(group)
                marks = ", ".join("?" for _ in group)
                ors.append(f"({_typed(field, group[0])} AND {column} IN ({marks}))")
            match = " OR ".join(ors)
            parts.append(f"({match})" if op == "$in" else f"({column} IS NULL OR NOT ({match}))")
        elif op == "$exists":
            parts.append(f"{column} IS {'NOT ' if value else ''}NULL")
        else:
            raise InvalidFilterError(
                f"unknown filter operator {op!r}; use one of "
                f"{sorted([*_COMPARE, '$in', '$nin', '$exists'])}"
            )
    return " AND ".join(parts)


def _compile(spec: Filter, params: list[Any]) -> str:
    if not isinstance(spec, Mapping):
        raise InvalidFilterError(f"a filter is a dict, not {type(spec).__name__}")
    clauses = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, Sequence) or isinstance(value, str) or not value:
                raise InvalidFilterError(f"{key} takes a non-empty list of filters")
            joined = f" {key[1:].upper()} ".join(f"({_compile(v, params)})" for v in value)
            clauses.append(joined)
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilterError(f"unknown top-level filter operator {key!r}")
        else:
            clauses.append(_condition(key, value, params))
    if not clauses:
        raise InvalidFilterError("empty filter; pass None for no filter")
    return " AND ".join(f"({c})" for c in clauses)


def compile_filter(spec: Filter) -> tuple[str, list[Any]]:
    """Compile a filter dict into an SQL ``WHERE`` expression and its parameters.

    ``{}`` at the top level means no filter (as LangChain callers often pass it).
    A boolean value only matches JSON booleans, and a number never matches one.
    """
    if isinstance(spec, Mapping) and not spec:
        return "1", []
    params: list[Any] = []
    return _compile(spec, params), params


__all__ = ["Filter", "compile_filter"]
