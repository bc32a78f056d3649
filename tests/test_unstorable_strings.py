"""Strings that a backend cannot store (NUL, lone surrogates): one typed error, on both backends.

PostgreSQL cannot store NUL in ``text`` or ``jsonb``, and no UTF-8 store holds a lone
surrogate. So colrank refuses both at its public boundary, before anything reaches a
backend, with :class:`colrank.InvalidInputError`; the local backend gives the same answer,
so an index behaves the same whichever backend holds it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import pytest

from colrank import ColrankIndex, InvalidInputError

from .conftest import CORPUS

BAD = {"nul": "a\x00b", "surrogate": "a\ud800b"}

CALLS: dict[str, Callable[[ColrankIndex, str], Any]] = {
    "text": lambda ix, s: ix.add([f"text {s}"], ids=["n1"]),
    "upsert-text": lambda ix, s: ix.upsert([f"text {s}"], ids=["geo-paris"]),
    "encode-text": lambda ix, s: ix.add(["text"], ids=["n1"], encode_texts=[f"text {s}"]),
    "id": lambda ix, s: ix.add(["text"], ids=[f"id{s}"]),
    "metadata-key": lambda ix, s: ix.add(["text"], [{f"k{s}": 1}], ids=["n1"]),
    "metadata-value": lambda ix, s: ix.add(["text"], [{"k": f"v{s}"}], ids=["n1"]),
    "metadata-nested": lambda ix, s: ix.add(["text"], [{"k": [{"x": {f"y{s}": 1}}]}], ids=["n1"]),
    "metadata-list-item": lambda ix, s: ix.add(["text"], [{"k": ["ok", f"v{s}"]}], ids=["n1"]),
    "delete-id": lambda ix, s: ix.delete([f"geo{s}"], missing="ignore"),
    "get-id": lambda ix, s: ix.get([f"geo{s}"], missing="ignore"),
    "filter-key": lambda ix, s: ix.search("capital", filter={f"topic{s}": "geo"}),
    "filter-value": lambda ix, s: ix.search("capital", filter={"topic": f"geo{s}"}),
    "filter-in-item": lambda ix, s: ix.ids(filter={"topic": {"$in": ["geo", f"x{s}"]}}),
    "query": lambda ix, s: ix.search(f"capital {s}"),
    "rerank-document": lambda ix, s: ix.rerank("capital", ["ok", f"doc {s}"]),
}


def fill(index: ColrankIndex) -> ColrankIndex:
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


@pytest.fixture(scope="module")
def local_index(tiny_config) -> ColrankIndex:
    return fill(ColrankIndex(tiny_config))


@pytest.fixture(scope="module")
def postgres_index(request, tiny_config):
    url = request.getfixturevalue("postgres_url")
    index = ColrankIndex.open(url, f"u{zlib.crc32(request.node.nodeid.encode())}", tiny_config)
    index.backend.drop()
    yield fill(index)
    index.backend.drop()
    index.backend.close()


@pytest.mark.parametrize("backend", ["local", "postgres"])
@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_strings_no_backend_can_store_are_refused_alike_and_change_nothing(
    request, backend, kind, call
) -> None:
    index = request.getfixturevalue(f"{backend}_index")
    before = {d.id: (d.text, d.metadata) for d in index.get(index.ids())}
    with pytest.raises(InvalidInputError) as caught:
        CALLS[call](index, BAD[kind])
    assert "NUL" in str(caught.value) or "surrogate" in str(caught.value)
    assert {d.id: (d.text, d.metadata) for d in index.get(index.ids())} == before
