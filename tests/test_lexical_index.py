"""BM25: same scores as bm25s, incremental adds and exact deletes, persistence."""

from __future__ import annotations

import json

import bm25s
import numpy as np
import pytest
import Stemmer

from colrank.store.local.lexical_index import BM25_DIR, BM25Index

from .conftest import CORPUS

TEXTS = [text for _, text, _ in CORPUS]
QUERIES = ["capital city", "cells energy chemical", "dense vectors search", "al dente pasta"]


def scores(index: BM25Index, query: str) -> np.ndarray:
    return index.scores_and_max(query)[0]


def query_max(index: BM25Index, query: str) -> float:
    return index.scores_and_max(query)[1]


def score_texts(index: BM25Index, query: str, texts: list[str]) -> np.ndarray:
    return index.score_texts_and_max(query, texts)[0]


def search(index: BM25Index, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    return index.top(scores(index, query), k)


def reference_scores(texts: list[str], query: str) -> np.ndarray:
    """A fresh bm25s index over ``texts`` (its defaults: Lucene BM25, k1=1.5, b=0.75)."""
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    model.index(tokens, show_progress=False)
    tokens = bm25s.tokenize(
        [query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )[0]
    known = [t for t in tokens if t in model.vocab_dict]
    return model.get_scores(known) if known else np.zeros(len(texts))


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_bm25s(query: str) -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    np.testing.assert_allclose(scores(index, query), reference_scores(TEXTS, query), rtol=1e-5)


def test_adding_in_steps_scores_like_one_fresh_index() -> None:
    index = BM25Index()
    index.add([0, 1, 2], TEXTS[:3])
    scores(index, "capital")  # a query in between must not freeze the statistics
    index.add(list(range(3, len(TEXTS))), TEXTS[3:])
    for query in QUERIES:
        np.testing.assert_allclose(scores(index, query), reference_scores(TEXTS, query), rtol=1e-5)
    with pytest.raises(ValueError, match="increasing"):
        index.add([2], ["an id that is not new"])


def test_deletes_update_the_statistics_exactly() -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    gone = [0, 4, 7]
    index.delete(gone)
    kept = [i for i in range(len(TEXTS)) if i not in gone]
    for query in QUERIES:
        full = scores(index, query)
        assert np.all(np.isneginf(full[gone]))
        expected = reference_scores([TEXTS[i] for i in kept], query)
        np.testing.assert_allclose(full[kept], expected, rtol=1e-5)
    index.delete(list(range(8, len(TEXTS))))  # past half deleted: rows are compacted
    assert index.ids.tolist() == [1, 2, 3, 5, 6] and len(index) == 5
    np.testing.assert_allclose(
        scores(index, "capital"), reference_scores([TEXTS[i] for i in (1, 2, 3, 5, 6)], "capital")
    )


def test_save_load_round_trip_and_old_format(tmp_path) -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    index.delete([3])
    index.save(tmp_path)
    loaded = BM25Index.load(tmp_path)
    live = [i for i in range(len(TEXTS)) if i != 3]  # saved without the deleted row
    assert loaded is not None and loaded.ids.tolist() == live
    for query in QUERIES:
        np.testing.assert_allclose(scores(loaded, query), scores(index, query)[live])
    loaded.add([100], ["Capital gains are taxed."])  # statistics were restored on load
    fresh = BM25Index()
    fresh.add([*live, 100], [*[TEXTS[i] for i in live], "Capital gains are taxed."])
    np.testing.assert_allclose(scores(loaded, "capital"), scores(fresh, "capital"), rtol=1e-6)
    meta = tmp_path / BM25_DIR / "bm25_colrank.json"
    meta.write_text(json.dumps({"language": "english"}))  # a bm25s directory (format 1)
    assert BM25Index.load(tmp_path) is None  # the backend rebuilds it from its texts


@pytest.mark.parametrize("query", QUERIES)
def test_outside_texts_score_like_indexed_ones_and_below_the_query_maximum(query: str) -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    indexed = scores(index, query)
    # the same texts scored as if they came from elsewhere, under the index's statistics
    np.testing.assert_allclose(score_texts(index, query, TEXTS), indexed, rtol=1e-6)
    top = query_max(index, query)
    assert top > 0 and indexed.max() < top  # so score / query_max lies in [0, 1)
    # a text with every query term many times approaches the maximum
    stuffed = " ".join([query] * 200)
    assert score_texts(index, query, [stuffed])[0] > 0.6 * top


def test_query_max_is_zero_without_known_terms() -> None:
    index = BM25Index()
    index.add([0, 1], ["cats sleep", "dogs bark"])
    assert query_max(index, "quantum chromodynamics") == 0.0
    assert score_texts(index, "quantum", ["quantum physics"]).tolist() == [0.0]
    assert score_texts(BM25Index(), "cats", ["cats"]).tolist() == [0.0]  # empty index


def test_stopwords_follow_the_language_name() -> None:
    german = BM25Index("german")
    german.add([0, 1], ["der Hund und die Katze", "ein Haus am See"])
    # "und", "die", "der" are German stopwords: they match nothing; "hund" does
    assert query_max(german, "und die der") == 0.0
    assert search(german, "Hund", k=1)[1].tolist() == [0]
    finnish = BM25Index("finnish")  # no bm25s stopword list: every word counts
    finnish.add([0], ["ja kissa"])
    assert query_max(finnish, "ja") > 0


def test_indexed_and_outside_texts_share_the_query_maximum() -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    for query in QUERIES:
        indexed, top = index.scores_and_max(query)
        texts, text_top = index.score_texts_and_max(query, TEXTS)
        assert text_top == top > 0
        assert np.all(indexed <= top) and np.all(texts <= top)
