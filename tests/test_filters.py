"""Metadata filters compiled to SQLite, checked against a Python reference."""

from __future__ import annotations

import pytest

from colrank import InvalidFilterError
from colrank.store.local.docstore import DocStore

ROWS = [
    {"lang": "en", "year": 2019, "tags": "a", "draft": False},
    {"lang": "fr", "year": 2021, "tags": "b", "draft": True},
    {"lang": "en", "year": 2023, "draft": False},
    {"lang": "de", "year": 2020},
    {"lang": "en", "year": 2020, "tags": "b", "author name": "x"},
]


@pytest.fixture
def store() -> DocStore:
    s = DocStore()
    s.add(list(range(len(ROWS))), [f"d{i}" for i in range(len(ROWS))], ["t"] * len(ROWS), ROWS)
    return s


REFERENCE = [
    ({"lang": "en"}, lambda m: m.get("lang") == "en"),
    ({"year": {"$gte": 2020}}, lambda m: m["year"] >= 2020),
    ({"year": {"$gt": 2019, "$lt": 2023}}, lambda m: 2019 < m["year"] < 2023),
    ({"lang": {"$in": ["fr", "de"]}}, lambda m: m["lang"] in ("fr", "de")),
    ({"lang": {"$nin": ["en"]}}, lambda m: m["lang"] != "en"),
    ({"tags": {"$ne": "b"}}, lambda m: m.get("tags") != "b"),
    ({"tags": {"$exists": False}}, lambda m: "tags" not in m),
    ({"draft": True}, lambda m: m.get("draft") is True),
    ({"author name": "x"}, lambda m: m.get("author name") == "x"),
    (
        {"$or": [{"lang": "fr"}, {"year": {"$lte": 2019}}]},
        lambda m: m["lang"] == "fr" or m["year"] <= 2019,
    ),
    (
        {"$and": [{"lang": "en"}, {"year": {"$eq": 2020}}]},
        lambda m: m["lang"] == "en" and m["year"] == 2020,
    ),
]


@pytest.mark.parametrize(("spec", "predicate"), REFERENCE)
def test_filter_matches_python_reference(store: DocStore, spec, predicate) -> None:
    expected = [i for i, m in enumerate(ROWS) if predicate(m)]
    assert store.matching_iids(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [{"year": {"$regex": "x"}}, {"$not": {}}, {"lang": {"$in": "en"}}, {"lang": {"$eq": [1]}}],
)
def test_bad_filters_raise(store: DocStore, spec) -> None:
    with pytest.raises(InvalidFilterError):
        store.matching_iids(spec)


def nested(depth: int) -> dict:
    spec: dict = {"lang": "en"}
    for _ in range(depth):
        spec = {"$and": [spec]}
    return spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (nested(50), "deeper than"),
        ({"$or": [{"year": y} for y in range(2000)]}, "more than 512"),
        ({"lang": {"$in": [f"l{i}" for i in range(600)]}}, "more than 512"),
        ({"tags": {"$exists": "no"}}, "true or false"),
        ({"year": {"$gt": float("nan")}}, "finite"),
    ],
)
def test_filters_beyond_the_grammar_get_clear_errors(store: DocStore, spec, message) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        store.matching_iids(spec)


def test_deep_and_wide_filters_within_the_limits_work(store: DocStore) -> None:
    assert store.matching_iids(nested(16)) == [0, 2, 4]
    assert store.matching_iids({"year": {"$in": list(range(1500, 2012))}}) == []


def test_integers_beyond_64_bits(store: DocStore) -> None:
    s = DocStore()
    s.add([0, 1], ["a", "b"], ["t", "t"], [{"n": 2**70}, {"n": 5}])
    assert s.matching_iids({"n": {"$gt": 2**69}}) == [0]
    assert s.matching_iids({"n": {"$lt": 2**64}}) == [1]


ODD_KEYS = ['a"b', "x.y", "[0]", "a.b.c", "naïve key", "it's"]  # "$..." is for operators


def test_keys_with_any_characters_match(store: DocStore) -> None:
    s = DocStore()
    s.add([0, 1], ["a", "b"], ["t", "t"], [{k: i for i, k in enumerate(ODD_KEYS)}, {"x": 1}])
    for i, key in enumerate(ODD_KEYS):
        assert s.matching_iids({key: i}) == [0], key
        assert s.matching_iids({key: {"$exists": False}}) == [1], key


def test_injection_in_field_names_is_harmless(store: DocStore) -> None:
    assert store.matching_iids({"x') OR 1=1 --": "y"}) == []


def test_an_empty_filter_means_no_filter(store: DocStore) -> None:
    assert store.matching_iids({}) == list(range(len(ROWS)))


@pytest.mark.parametrize(
    ("spec", "stored"),
    [
        ({"year": {"$gt": "2000"}}, "number"),
        ({"year": "2020"}, "number"),
        ({"year": {"$in": ["2019", "2020"]}}, "number"),
        ({"lang": 1}, "string"),
        ({"draft": 1}, "boolean"),
        ({"tags": {"$ne": 3}}, "string"),  # would have matched every document
        ({"$or": [{"lang": "fr"}, {"year": {"$gte": "2020"}}]}, "number"),
        ({"author name": True}, "string"),
    ],
)
def test_a_value_of_a_kind_the_field_never_holds_is_refused(store: DocStore, spec, stored) -> None:
    with pytest.raises(InvalidFilterError, match=f"as {stored}"):
        store.matching_iids(spec)


def test_fields_no_document_holds_are_not_a_kind_mismatch(store: DocStore) -> None:
    assert store.matching_iids({"pages": {"$gt": "10"}}) == []
    assert store.matching_iids({"pages": {"$ne": 3}}) == list(range(len(ROWS)))
    # a field holding several kinds accepts each of them
    mixed = DocStore()
    mixed.add([0, 1], ["a", "b"], ["t", "t"], [{"v": 1}, {"v": "1"}])
    assert mixed.matching_iids({"v": "1"}) == [1] and mixed.matching_iids({"v": 1}) == [0]


TYPED = [{"n": 1}, {"n": True}, {"n": 0}, {"n": False}, {"n": "1"}, {}]


def same(a: object, b: object) -> bool:
    """Python equality that, like JSON, keeps booleans apart from numbers."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


TYPED_REFERENCE = [
    ({"n": True}, lambda m: same(m.get("n"), True)),
    ({"n": 1}, lambda m: same(m.get("n"), 1)),
    ({"n": {"$ne": True}}, lambda m: not same(m.get("n"), True)),
    ({"n": {"$ne": 0}}, lambda m: not same(m.get("n"), 0)),
    ({"n": {"$in": [1, False]}}, lambda m: any(same(m.get("n"), v) for v in (1, False))),
    ({"n": {"$nin": [True]}}, lambda m: not same(m.get("n"), True)),
    (
        {"n": {"$gte": 1}},
        lambda m: isinstance(m.get("n"), int) and not isinstance(m["n"], bool) and m["n"] >= 1,
    ),
]


@pytest.mark.parametrize(("spec", "predicate"), TYPED_REFERENCE)
def test_booleans_and_numbers_do_not_match_each_other(spec, predicate) -> None:
    s = DocStore()
    s.add(list(range(len(TYPED))), [f"d{i}" for i in range(len(TYPED))], ["t"] * len(TYPED), TYPED)
    assert s.matching_iids(spec) == [i for i, m in enumerate(TYPED) if predicate(m)]


def test_postgres_compiles_the_same_filters_to_the_same_answers(postgres_url) -> None:
    """Every reference filter above, on PostgreSQL's jsonb, against the same predicates."""
    import numpy as np

    from colrank.store.base import DocumentRows, WriteBatch
    from colrank.store.postgres.backend import PostgresBackend

    extra = [{"big": 2**70}, {"big": 5}, {"s": "10"}, {"s": "9"}, {"year": 2024}]
    extra_cases = [
        ({"big": {"$gt": 2**69}}, lambda m: isinstance(m.get("big"), int) and m["big"] > 2**69),
        ({"s": {"$gt": "9"}}, lambda m: isinstance(m.get("s"), str) and m["s"] > "9"),
    ]
    groups = {
        "rows": (ROWS, REFERENCE),
        "typed": (TYPED, TYPED_REFERENCE),
        "extra": (extra, extra_cases),
    }
    docs = [(g, i, m) for g, (metas, _) in groups.items() for i, m in enumerate(metas)]
    ids = [f"{g}-{i}" for g, i, _ in docs]
    stored = [{**m, "group": g} for g, _, m in docs]
    backend = PostgresBackend(postgres_url, "filters")
    backend.drop()
    try:
        vectors = np.full((len(docs), 4), 0.5, dtype=np.float32)
        tokens = [np.ones((1, 4), np.float32)] * len(docs)
        backend.write(
            WriteBatch(upserts=DocumentRows(ids, ["t"] * len(docs), stored, vectors, tokens))
        )
        with backend.read() as view:
            for group, (metas, cases) in groups.items():
                for spec, predicate in cases:
                    want = [f"{group}-{i}" for i, m in enumerate(metas) if predicate(m)]
                    assert view.ids({"$and": [{"group": group}, spec]}) == want, spec
            with pytest.raises(InvalidFilterError):
                view.ids({"year": {"$regex": "x"}})
            with pytest.raises(InvalidFilterError, match="stores 'year' as number"):
                view.ids({"year": {"$gt": "2000"}})  # text would never match a number
            assert view.ids({"x') OR 1=1 --": "y"}) == []
            assert len(view.ids({})) == len(docs)
    finally:
        backend.drop()
        backend.close()
