"""Metadata in: what users pass, stored as JSON by a documented conversion.

Documents keep their metadata as JSON (SQLite here, ``jsonb`` in a database), so a value
that is not JSON is converted, the same way every time:

=============================================  ==========================================
value                                          stored as
=============================================  ==========================================
``str``, ``bool``, ``int``, finite ``float``, None   itself
``datetime``, ``date``, ``time``               ISO 8601 text (``value.isoformat()``)
``pathlib`` paths, ``UUID``, ``Decimal``        text (``str(value)``)
``Enum`` members                               their ``value`` (converted again)
numpy scalars / arrays                         Python numbers / lists (``.item()`` / ``.tolist()``)
tuples, lists, sets                            lists (sets sorted where they can be)
dicts                                          dicts with text keys
=============================================  ==========================================

NaN and infinities are refused (JSON has no such numbers, and a stored ``NaN`` would break
every filtered search), as are keys and text holding a NUL or a lone surrogate
(:mod:`colrank.storable`) and anything else: :class:`~colrank.errors.InvalidInputError`
says which key.

Example:
    >>> import datetime, pathlib
    >>> to_json_metadata({"when": datetime.date(2024, 5, 1), "file": pathlib.Path("a/b.txt")})
    {'when': '2024-05-01', 'file': 'a/b.txt'}
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

from colrank.errors import InvalidInputError
from colrank.storable import check_storable

MAX_DEPTH = 32


def to_json_metadata(metadata: Mapping[str, Any], where: str = "metadata") -> dict[str, Any]:
    """A JSON-ready copy of one document's metadata (see the module table)."""
    value = _convert(metadata, where, 0)
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be a dict, not {type(metadata).__name__}")
    return value


def _convert(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"{where} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return check_storable(value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} is {value}: JSON has no NaN or infinity; use None")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where} has a key {key!r} that is not a string")
            check_storable(key, f"a key of {where}")
            out[key] = _convert(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_convert(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_convert(v, f"{where} item", depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Enum):
        return _convert(value.value, where, depth + 1)
    if isinstance(value, (PurePath, UUID, Decimal)):
        return str(value)
    numpy_item = getattr(value, "item", None) if type(value).__module__ == "numpy" else None
    if numpy_item is not None:
        array = getattr(value, "tolist", None)
        return _convert(array() if getattr(value, "ndim", 0) else numpy_item(), where, depth + 1)
    raise InvalidInputError(
        f"{where} is a {type(value).__name__}, which is not JSON and has no documented "
        "conversion (see colrank.metadata); convert it to text or a number first"
    )


__all__ = ["MAX_DEPTH", "to_json_metadata"]
