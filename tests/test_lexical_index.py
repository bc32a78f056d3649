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
    np.testing.assert_allclose(index.scores(query), reference_scores(TEXTS, query), rtol=1e-5)


def test_adding_in_steps_scores_like_one_fresh_index() -> None:
    index = BM25Index()
    index.add([0, 1, 2], TEXTS[:3])
    index.scores("capital")  # a query in between must not freeze the statistics
    index.add(list(range(3, len(TEXTS))), TEXTS[3:])
    for query in QUERIES:
        np.testing.assert_allclose(index.scores(query), reference_scores(TEXTS, query), rtol=1e-5)
    with pytest.raises(ValueError, match="increasing"):
        index.add([2], ["an id that is not new"])


def test_deletes_update_the_statistics_exactly() -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    gone = [0, 4, 7]
    index.delete(gone)
    kept = [i for i in range(len(TEXTS)) if i not in gone]
    for query in QUERIES:
        scores = index.scores(query)
        assert np.all(np.isneginf(scores[gone]))
        expected = reference_scores([TEXTS[i] for i in kept], query)
        np.testing.assert_allclose(scores[kept], expected, rtol=1e-5)
    index.delete(list(range(8, len(TEXTS))))  # past half deleted: rows are compacted
    assert index.ids.tolist() == [1, 2, 3, 5, 6] and len(index) == 5
    np.testing.assert_allclose(
        index.scores("capital"), reference_scores([TEXTS[i] for i in (1, 2, 3, 5, 6)], "capital")
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
        np.testing.assert_allclose(loaded.scores(query), index.scores(query)[live])
    loaded.add([100], ["Capital gains are taxed."])  # statistics were restored on load
    fresh = BM25Index()
    fresh.add([*live, 100], [*[TEXTS[i] for i in live], "Capital gains are taxed."])
    np.testing.assert_allclose(loaded.scores("capital"), fresh.scores("capital"), rtol=1e-6)
    meta = tmp_path / BM25_DIR / "bm25_colrank.json"
    meta.write_text(json.dumps({"language": "english"}))  # a bm25s directory (format 1)
    assert BM25Index.load(tmp_path) is None  # the backend rebuilds it from its texts


@pytest.mark.parametrize("query", QUERIES)
def test_outside_texts_score_like_indexed_ones_and_below_the_query_maximum(query: str) -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    indexed = index.scores(query)
    # the same texts scored as if they came from elsewhere, under the index's statistics
    np.testing.assert_allclose(index.score_texts(query, TEXTS), indexed, rtol=1e-6)
    top = index.query_max(query)
    assert top > 0 and indexed.max() < top  # so score / query_max lies in [0, 1)
    # a text with every query term many times approaches the maximum
    stuffed = " ".join([query] * 200)
    assert index.score_texts(query, [stuffed])[0] > 0.6 * top


def test_query_max_is_zero_without_known_terms() -> None:
    index = BM25Index()
    index.add([0, 1], ["cats sleep", "dogs bark"])
    assert index.query_max("quantum chromodynamics") == 0.0
    assert index.score_texts("quantum", ["quantum physics"]).tolist() == [0.0]
    assert BM25Index().score_texts("cats", ["cats"]).tolist() == [0.0]  # empty index


def test_stopwords_follow_the_language_name() -> None:
    german = BM25Index("german")
    german.add([0, 1], ["der Hund und die Katze", "ein Haus am See"])
    # "und", "die", "der" are German stopwords: they match nothing; "hund" does
    assert german.query_max("und die der") == 0.0
    assert german.search("Hund", k=1)[1].tolist() == [0]
    finnish = BM25Index("finnish")  # no bm25s stopword list: every word counts
    finnish.add([0], ["ja kissa"])
    assert finnish.query_max("ja") > 0


def test_scores_and_max_equal_the_two_separate_calls() -> None:
    index = BM25Index()
    index.add(list(range(len(TEXTS))), TEXTS)
    for query in QUERIES:
        scores, top = index.scores_and_max(query)
        np.testing.assert_array_equal(scores, index.scores(query))
        assert top == index.query_max(query)
        texts, text_top = index.score_texts_and_max(query, TEXTS)
        np.testing.assert_array_equal(texts, index.score_texts(query, TEXTS))
        assert text_top == top
