"""Fusion maths on hand-made rankings."""

from __future__ import annotations

import numpy as np
import pytest

from colrank.recall.candidates import fuse_hybrid
from colrank.scoring.fusion import interpolate, minmax, ranks, rrf
from colrank.scoring.records import Recall


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
    shared = ranks(np.array([0.5, 0.9, 0.5, np.nan, 0.1]), shared_ties=True)
    np.testing.assert_array_equal(shared, [2, 1, 2, np.inf, 4])


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


def test_calibrated_is_a_weighted_mean_that_leaves_out_missing_stages() -> None:
    from colrank.scoring.fusion import calibrated

    dense = np.array([0.8, 0.4, np.nan])
    bm25 = np.array([0.2, np.nan, np.nan])
    fused = calibrated([dense, bm25], [0.75, 0.25])
    # doc 0: 0.75*0.8 + 0.25*0.2; doc 1: BM25 missing -> dense alone; doc 2: nothing
    np.testing.assert_allclose(fused[:2], [0.65, 0.4])
    assert np.isnan(fused[2])
    # fixed scales: one candidate's score does not depend on the others (no min-max)
    alone = calibrated([dense[:1], bm25[:1]], [0.75, 0.25])
    assert alone[0] == pytest.approx(fused[0])
    for bad in ([0.5], [-0.1, 1.1], [0.0, 0.0]):
        with pytest.raises(ValueError, match="weight"):
            calibrated([dense, bm25], bad)


def test_bm25_share_is_the_fraction_of_the_query_maximum() -> None:
    from colrank.scoring.records import bm25_share

    np.testing.assert_allclose(bm25_share(np.array([1.0, 3.0, np.nan]), 4.0)[:2], [0.25, 0.75])
    assert np.isnan(bm25_share(np.array([1.0]), np.nan)).all()  # BM25 took no part
    # no query term in the corpus: no lexical evidence, 0 for every scored document
    np.testing.assert_array_equal(bm25_share(np.array([0.0, np.nan]), 0.0)[:1], [0.0])


def test_calibrated_hybrid_ranks_by_the_fused_fixed_scale_score() -> None:
    dense = Recall(np.array([1, 2]), np.array([0.9, 0.5]), np.array([0.9, 0.5]), np.full(2, np.nan))
    lexical = Recall(
        np.array([3, 2]), np.array([6.0, 4.0]), np.full(2, np.nan), np.array([6.0, 4.0]), 8.0
    )
    fused = fuse_hybrid(
        dense,
        lexical,
        n=3,
        method="calibrated",
        bm25_weight=0.5,
        dense_of={3: 0.2},
        bm25_of={1: 0.0, 2: 4.0},
    )
    # 1: .5*.9 + .5*0 = .45; 2: .5*.5 + .5*.5 = .5; 3: .5*.2 + .5*.75 = .475
    assert fused.iids.tolist() == [2, 3, 1]
    np.testing.assert_allclose(fused.first, [0.5, 0.475, 0.45])
    assert fused.bm25_max == 8.0
