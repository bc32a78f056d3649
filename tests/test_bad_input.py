"""A table of careless calls to the public API: each raises a colrank error, and changes nothing.

The table crosses every public method with the kinds of wrong values people pass (wrong
types, empty or whitespace text, non-positive or fractional counts, malformed filters,
metadata that is not JSON). Each case must raise a :class:`colrank.ColrankError`
subclass with a message, never a generic Python exception or a silently wrong answer,
and leave the index as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from colrank import ColrankError, ColrankIndex, InvalidFilterError

from .conftest import CORPUS

Call = Callable[[ColrankIndex], Any]

BAD_QUERIES: dict[str, Any] = {
    "empty": "",
    "blank": "   \n\t",
    "none": None,
    "int": 42,
    "float": 3.5,
    "bytes": b"bread",
    "list": ["bread"],
    "dict": {"q": "bread"},
    "surrogate": "bread \ud800",
    "object": object(),
}
BAD_COUNTS: dict[str, Any] = {
    "zero": 0,
    "negative": -1,
    "fraction": 1.5,
    "text": "3",
    "none": None,
    "bool": True,
    "nan": math.nan,
}


def nested(depth: int) -> dict:
    spec: dict = {"topic": "geo"}
    for _ in range(depth):
        spec = {"$and": [spec]}
    return spec


BAD_FILTERS: dict[str, Any] = {
    "string": "topic=geo",
    "int": 5,
    "list": ["topic"],
    "unknown-top-operator": {"$bad": 1},
    "unknown-operator": {"topic": {"$regex": "g"}},
    "list-compared": {"year": {"$gt": [1]}},
    "in-a-string": {"topic": {"$in": "geo"}},
    "in-empty": {"topic": {"$in": []}},
    "exists-text": {"topic": {"$exists": "no"}},
    "null-value": {"topic": None},
    "nan-value": {"year": math.nan},
    "and-empty": {"$and": []},
    "or-a-dict": {"$or": {"topic": "geo"}},
    "empty-key": {"": 1},
    "int-key": {1: "x"},
    "empty-operators": {"topic": {}},
    "too-deep": nested(20),
    "too-wide": {"$or": [{"year": i} for i in range(600)]},
    "text-for-a-number": {"year": {"$gt": "2000"}},
    "number-for-a-text": {"topic": 7},
}

FILTERED_CALLS: dict[str, Callable[[ColrankIndex, Any], Any]] = {
    "search": lambda ix, f: ix.search("bread", filter=f),
    "recall": lambda ix, f: ix.recall("bread", filter=f),
    "dense_search": lambda ix, f: ix.dense_search("bread", filter=f),
    "search_diverse": lambda ix, f: ix.search_diverse("bread", filter=f),
    "ids": lambda ix, f: ix.ids(filter=f),
}
QUERY_CALLS: dict[str, Callable[[ColrankIndex, Any], Any]] = {
    "search": lambda ix, q: ix.search(q),
    "search_many": lambda ix, q: ix.search_many(["bread", q]),
    "recall": lambda ix, q: ix.recall(q),
    "dense_search": lambda ix, q: ix.dense_search(q),
    "search_diverse": lambda ix, q: ix.search_diverse(q),
    "candidate_scores": lambda ix, q: ix.candidate_scores([q]),
    "rerank": lambda ix, q: ix.rerank(q, ["Bread needs yeast."]),
}
COUNT_CALLS: dict[str, Callable[[ColrankIndex, Any], Any]] = {
    "search.k": lambda ix, n: ix.search("bread", k=n),
    "search.candidates": lambda ix, n: ix.search("bread", k=2, candidates=n),
    "search_many.k": lambda ix, n: ix.search_many(["bread"], k=n),
    "recall.k": lambda ix, n: ix.recall("bread", k=n),
    "dense_search.k": lambda ix, n: ix.dense_search("bread", k=n),
    "search_diverse.k": lambda ix, n: ix.search_diverse("bread", k=n),
    "rerank.k": lambda ix, n: ix.rerank("bread", ["Bread needs yeast."], k=n),
    "candidate_scores.candidates": lambda ix, n: ix.candidate_scores(["bread"], candidates=n),
}
BAD_TEXT_LISTS: dict[str, Any] = {
    "empty-list": [],
    "bare-string": "Bread needs yeast.",
    "int-item": ["ok", 3],
    "empty-item": ["ok", ""],
    "blank-item": ["ok", "  "],
    "none-item": ["ok", None],
    "bytes-item": ["ok", b"x"],
    "surrogate-item": ["ok", "bad \udcff text"],
    "none": None,
    "dict": {"a": "text"},
}
BAD_WRITES: dict[str, Call] = {
    "metadata-length": lambda ix: ix.add(["a"], metadatas=[{}, {}], ids=["n1"]),
    "metadata-not-dict": lambda ix: ix.add(["a"], metadatas=["topic=geo"], ids=["n1"]),
    "metadata-nan": lambda ix: ix.add(["a"], metadatas=[{"x": math.nan}], ids=["n1"]),
    "metadata-inf": lambda ix: ix.add(["a"], metadatas=[{"x": math.inf}], ids=["n1"]),
    "metadata-nested-nan": lambda ix: ix.add(["a"], metadatas=[{"x": [1, math.nan]}], ids=["n1"]),
    "metadata-int-key": lambda ix: ix.add(["a"], metadatas=[{1: "a"}], ids=["n1"]),
    "metadata-object": lambda ix: ix.add(["a"], metadatas=[{"x": object()}], ids=["n1"]),
    "ids-duplicate": lambda ix: ix.add(["a", "b"], ids=["x", "x"]),
    "ids-existing": lambda ix: ix.add(["a"], ids=["geo-paris"]),
    "ids-int": lambda ix: ix.add(["a"], ids=[1]),
    "ids-empty-string": lambda ix: ix.add(["a"], ids=[""]),
    "ids-length": lambda ix: ix.add(["a"], ids=["n1", "n2"]),
    "ids-bare-string": lambda ix: ix.add(["a", "b"], ids="ab"),
    "on-conflict": lambda ix: ix.add(["a"], ids=["n1"], on_conflict="merge"),
    "upsert-duplicate": lambda ix: ix.upsert(["a", "b"], ids=["x", "x"]),
    "upsert-metadata-nan": lambda ix: ix.upsert(["a"], [{"x": math.nan}], ids=["geo-paris"]),
    "upsert-ids-int": lambda ix: ix.upsert(["a"], ids=[7]),
    "encode-texts-length": lambda ix: ix.add(["a"], ids=["n1"], encode_texts=["a", "b"]),
}
BAD_ID_CALLS: dict[str, Call] = {
    "delete-bare-string": lambda ix: ix.delete("geo-paris"),
    "delete-int-item": lambda ix: ix.delete([1]),
    "delete-none-item": lambda ix: ix.delete([None]),
    "delete-unknown": lambda ix: ix.delete(["nope", "geo-paris"]),
    "delete-missing-mode": lambda ix: ix.delete(["geo-paris"], missing="sometimes"),
    "delete-none": lambda ix: ix.delete(None),
    "get-bare-string": lambda ix: ix.get("geo-paris"),
    "get-int-item": lambda ix: ix.get([1]),
    "get-unknown": lambda ix: ix.get(["nope"]),
    "get-missing-mode": lambda ix: ix.get(["geo-paris"], missing="skip"),
    "get-none": lambda ix: ix.get(None),
}
BAD_OTHER: dict[str, Call] = {
    "rerank-docs-string": lambda ix: ix.rerank("bread", "Bread needs yeast."),
    "rerank-docs-int": lambda ix: ix.rerank("bread", [3]),
    "rerank-docs-none-item": lambda ix: ix.rerank("bread", [None]),
    "rerank-docs-bytes": lambda ix: ix.rerank("bread", [b"x"]),
    "first-stage-unknown": lambda ix: ix.search("bread", first_stage="sparse"),
    "first-stage-int": lambda ix: ix.search("bread", first_stage=3),
    "rerank-fusion-unknown": lambda ix: ix.search("bread", rerank_fusion="max"),
    "recall-first-stage": lambda ix: ix.recall("bread", first_stage="colbert"),
    "candidates-below-k": lambda ix: ix.search("bread", k=10, candidates=5),
    "diverse-fetch-below-k": lambda ix: ix.search_diverse("bread", k=5, fetch_k=2),
    "diverse-lambda-above-1": lambda ix: ix.search_diverse("bread", lambda_mult=1.5),
    "diverse-lambda-nan": lambda ix: ix.search_diverse("bread", lambda_mult=math.nan),
    "recode-unknown-codec": lambda ix: ix.recode_tokens("bfloat8"),
    "recode-pool-zero": lambda ix: ix.recode_tokens("float16", pool_factor=0),
    "copy-from-not-an-index": lambda ix: ix.copy_from("elsewhere"),
}


def cases() -> list[Any]:
    out = []
    for (m, call), (v, value) in _product(QUERY_CALLS, BAD_QUERIES):
        out.append(pytest.param(_bind(call, value), id=f"{m}-query-{v}"))
    for (m, call), (v, value) in _product(COUNT_CALLS, BAD_COUNTS):
        # rerank(k=None) means every document; search(candidates=None) the default depth
        if (m, v) not in (("rerank.k", "none"), ("search.candidates", "none")):
            out.append(pytest.param(_bind(call, value), id=f"{m}-{v}"))
    for (m, call), (v, value) in _product(FILTERED_CALLS, BAD_FILTERS):
        out.append(pytest.param(_bind(call, value), id=f"{m}-filter-{v}"))
    writes = {"add": lambda ix, t: ix.add(t), "upsert": lambda ix, t: ix.upsert(t)}
    for (m, call), (v, value) in _product(writes, BAD_TEXT_LISTS):
        out.append(pytest.param(_bind(call, value), id=f"{m}-texts-{v}"))
    for table in (BAD_WRITES, BAD_ID_CALLS, BAD_OTHER):
        out.extend(pytest.param(call, id=name) for name, call in table.items())
    return out


def _product(a: dict, b: dict) -> list[tuple[tuple[str, Any], tuple[str, Any]]]:
    return [(x, y) for x in a.items() for y in b.items()]


def _bind(call: Callable[[ColrankIndex, Any], Any], value: Any) -> Call:
    return lambda ix: call(ix, value)


CASES = cases()


@pytest.fixture(scope="module")
def index(tiny_config) -> ColrankIndex:
    index = ColrankIndex(tiny_config)
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


@pytest.mark.parametrize("call", CASES)
def test_a_careless_call_raises_a_colrank_error_and_changes_nothing(index, call) -> None:
    before = index.ids()
    with pytest.raises(ColrankError) as caught:
        call(index)
    assert str(caught.value).strip(), "the error says what is wrong"
    assert index.ids() == before
    assert index.get(["geo-paris"])[0].text == CORPUS[0][1]


def test_the_table_is_as_large_as_the_reliability_page_says() -> None:
    # docs/reliability.md quotes this count; keep them in step when cases are added
    assert len(CASES) >= 160


def test_careless_but_meaningful_calls_are_handled(index) -> None:
    # an empty external document is scored, not refused: chains pass them
    hits = index.rerank("bread", ["", "Bread dough rises because yeast ferments sugars."])
    assert sorted(h.position for h in hits) == [0, 1]
    assert all(math.isfinite(h.score) for h in hits)
    # rerank(k=None) returns every document; a k beyond the index returns all it has
    assert len(index.rerank("bread", ["a", "b", "c"], k=None)) == 3
    assert len(index.search("bread", k=500, candidates=500)) == len(CORPUS)
    # {} is "no filter", as LangChain callers pass it
    assert len(index.search("bread", k=3, filter={})) == 3


def test_filter_errors_name_the_problem(index) -> None:
    with pytest.raises(InvalidFilterError, match="stores 'year' as number"):
        index.search("bread", filter={"year": {"$gt": "2000"}})
    with pytest.raises(InvalidFilterError, match="deeper than 16"):
        index.search("bread", filter=nested(20))


def test_a_k_beyond_the_default_candidates_raises_the_candidates_to_k(index) -> None:
    # the docstring's promise: with no candidates given, the depth follows k (and the
    # index's size bounds the work); an explicit candidates below k stays refused
    everything = index.search("bread", k=10**9)
    assert sorted(h.id for h in everything) == sorted(index.ids())
    assert [h.id for h in index.search("bread", k=150)] == [h.id for h in everything]
    assert [len(hits) for hits in index.search_many(["bread", "paris"], k=10**9)] == [12, 12]
    with pytest.raises(ColrankError, match="candidates"):
        index.search("bread", k=10**9, candidates=100)
