"""Metadata in: the documented conversion of values that are not JSON, and what is refused."""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from colrank import InvalidInputError
from colrank.metadata import to_json_metadata


class Colour(enum.Enum):
    RED = "red"


def test_values_that_are_not_json_are_converted_as_documented() -> None:
    key = uuid.UUID(int=7)
    meta = {
        "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 5, 1),
        "path": Path("docs") / "a.md",
        "id": key,
        "price": Decimal("1.50"),
        "colour": Colour.RED,
        "count": np.int64(3),
        "score": np.float32(0.5),
        "vector": np.array([1, 2]),
        "tags": {"b", "a"},
        "pair": (1, "x"),
        "nested": {"flag": np.bool_(True)},
    }
    assert to_json_metadata(meta) == {
        "when": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "path": str(Path("docs") / "a.md"),
        "id": str(key),
        "price": "1.50",
        "colour": "red",
        "count": 3,
        "score": 0.5,
        "vector": [1, 2],
        "tags": ["a", "b"],
        "pair": [1, "x"],
        "nested": {"flag": True},
    }


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"x": math.nan}, "NaN"),
        ({"x": [1.0, math.inf]}, "NaN or infinity"),
        ({"x": np.float64("nan")}, "NaN"),
        ({1: "a"}, "not a string"),
        ({"x": object()}, "no documented"),
        ({"x": b"bytes"}, "no documented"),
    ],
)
def test_what_has_no_json_form_is_refused_with_the_key(meta, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        to_json_metadata(meta)


def test_converted_metadata_is_searchable_by_filter(tiny_index) -> None:
    tiny_index.add(
        ["Dated note."], [{"when": dt.date(2024, 5, 1), "n": np.int32(5)}], ids=["dated"]
    )
    assert tiny_index.get(["dated"])[0].metadata == {"when": "2024-05-01", "n": 5}
    assert tiny_index.ids(filter={"when": "2024-05-01"}) == ["dated"]
    assert tiny_index.ids(filter={"n": {"$gte": 5}}) == ["dated"]
    with pytest.raises(InvalidInputError, match="NaN"):
        tiny_index.add(["bad"], [{"x": float("nan")}], ids=["bad"])
    assert "bad" not in tiny_index
