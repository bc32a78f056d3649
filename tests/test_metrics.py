"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from colrank.eval.metrics import evaluate, mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_hand_computed_graded() -> None:
    run = {"q": ["a", "b", "c", "d"]}
    qrels = {"q": {"b": 2, "d": 1, "z": 1}}
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(run, qrels, 1) == 0.0


def test_recall_and_mrr_hand_computed() -> None:
    run = {"q1": ["x", "a", "b"], "q2": ["c", "y"]}
    qrels = {"q1": {"a": 1, "b": 1, "z": 1}, "q2": {"c": 1}}
    assert recall_at_k(run, qrels, 2) == pytest.approx((1 / 3 + 1) / 2)
    assert recall_at_k(run, qrels, 3) == pytest.approx((2 / 3 + 1) / 2)
    assert mrr_at_k(run, qrels, 10) == pytest.approx((1 / 2 + 1) / 2)
    assert mrr_at_k(run, qrels, 1) == pytest.approx((0 + 1) / 2)


def test_queries_without_positives_are_skipped_and_missing_runs_score_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 1}}
    run = {"q1": ["a"]}
    report = evaluate(run, qrels)
    assert report["ndcg@10"] == pytest.approx(0.5)
    assert report["mrr@10"] == pytest.approx(0.5)
