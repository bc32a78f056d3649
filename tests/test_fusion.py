"""Fusion maths on hand-made rankings."""

from __future__ import annotations

import numpy as np
import pytest

from colrank.first_stage import Recall, fuse_hybrid
from colrank.fusion import interpolate, minmax, ranks, rrf


def test_minmax_and_interpolate_by_hand() -> None:
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(minmax(np.array([7.0, 7.0])), [0.5, 0.5])
    # colbert [10, 20, 30] -> [0, .5, 1]; first [0.9, 0.1, 0.5] -> [1, 0, .5]
    fused = interpolate(np.array([10.0, 20.0, 30.0]), np.array([0.9, 0.1, 0.5]), weight=0.25)
    np.testing.assert_allclose(fused, [0.75, 0.125, 0.625])
    with pytest.raises(ValueError, match="weight"):
        interpolate(np.ones(2), np.ones(2), 1.5)


def test_missing_scores_count_as_zero_in_interpolation() -> None:
    # second: the one finite score normalises to 0.5, the missing one counts as 0
    fused = interpolate(np.array([1.0, 2.0]), np.array([np.nan, 5.0]), weight=0.5)
    np.testing.assert_allclose(fused, [0.0, 0.5 * 1.0 + 0.5 * 0.5])


def test_rrf_by_hand() -> None:
    a = np.array([3.0, 2.0, 1.0])  # ranks 1, 2, 3
    b = np.array([1.0, np.nan, 2.0])  # ranks 2, -, 1
    fused = rrf([a, b], k=10)
    np.testing.assert_allclose(fused, [1 / 11 + 1 / 12, 1 / 12, 1 / 13 + 1 / 11])
    np.testing.assert_array_equal(ranks(np.array([0.5, 0.9, 0.5])), [2, 1, 3])


def test_hybrid_union_keeps_best_n_with_both_scores() -> None:
    dense = Recall(
        np.array([1, 2, 3]),
        np.array([0.9, 0.8, 0.7]),
        np.array([0.9, 0.8, 0.7]),
        np.full(3, np.nan),
    )
    bm25 = Recall(np.array([4, 3]), np.array([9.0, 8.0]), np.full(2, np.nan), np.array([9.0, 8.0]))
    fused = fuse_hybrid(
        dense,
        bm25,
        n=3,
        method="rrf",
        rrf_k=60,
        dense_of={4: 0.1},
        bm25_of={1: 0.0, 2: 1.0, 3: 8.0},
    )
    # doc 3 is in both lists: 1/63 + 1/62 beats doc 1 (1/61) and doc 4 (1/61)
    assert fused.iids.tolist() == [3, 1, 4]
    np.testing.assert_allclose(fused.dense, [0.7, 0.9, 0.1])
    np.testing.assert_allclose(fused.bm25, [8.0, 0.0, 9.0])
    weighted = fuse_hybrid(
        dense, bm25, n=4, method="weighted", dense_weight=1.0, dense_of={4: 0.1}, bm25_of={}
    )
    assert weighted.iids.tolist() == [1, 2, 3, 4]  # pure dense order over the union
