"""Hybrid recall, BM25 persistence and updates, rerank fusion, cross-encoder stage."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from colrank import ColrankIndex, InvalidInputError
from colrank.store.local.lexical_index import BM25Index

from .conftest import CORPUS, assert_stores_agree


def test_bm25_recall_finds_exact_terms(tiny_index: ColrankIndex) -> None:
    hits = tiny_index.recall("yeast dough carbon dioxide", k=3, first_stage="bm25")
    assert hits[0].id == "food-bread"
    assert hits[0].bm25_score > 0 and hits[0].dense_score is None and hits[0].colbert_score is None


def test_every_first_stage_reranks_with_colbert(tiny_index: ColrankIndex) -> None:
    for stage in ("dense", "bm25", "hybrid"):
        hits = tiny_index.search(
            "capital city of germany", k=3, candidates=6, first_stage=stage, rerank_fusion="none"
        )
        assert 0 < len(hits) <= 3
        assert all(h.colbert_score is not None for h in hits)
        # no fusion: ordered by ColBERT
        assert [h.score for h in hits] == [h.colbert_score for h in hits]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    hybrid = tiny_index.search("capital city of germany", k=6, candidates=12, first_stage="hybrid")
    assert all(h.dense_score is not None and h.bm25_score is not None for h in hybrid)


def test_rerank_fusion_orders_by_fused_score(tiny_index: ColrankIndex) -> None:
    for fusion in ("calibrated", "interpolate", "rrf"):
        hits = tiny_index.search("capital of germany", k=5, candidates=8, rerank_fusion=fusion)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_first = tiny_index.search("capital of germany", k=5, candidates=8)
    with pytest.raises(InvalidInputError):
        tiny_index.search("q", first_stage="magic")
    assert only_first


def test_interpolation_weight_zero_is_first_stage_order(tiny_config) -> None:
    cfg = tiny_config.model_copy(
        update={
            "search": tiny_config.search.model_copy(
                update={
                    "colbert_weight": 0.0,
                    "rerank_fusion": "interpolate",
                    "first_stage": "dense",
                }
            )
        }
    )
    index = ColrankIndex(cfg)
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    index.add(texts, metas, ids)
    fused = [h.id for h in index.search("energy in cells", k=5, candidates=5)]
    dense = [h.id for h in index.dense_search("energy in cells", k=5)]
    assert fused == dense


def test_bm25_survives_save_load_add_and_delete(tiny_index: ColrankIndex, tmp_path, caplog) -> None:
    query = "boiled salted water al dente"
    before = tiny_index.recall(query, k=3, first_stage="bm25")
    assert before[0].id == "food-pasta"
    tiny_index.save(tmp_path / "idx")
    with caplog.at_level(logging.INFO, logger="colrank.store.local.backend"):
        loaded = ColrankIndex.load(tmp_path / "idx", tiny_index.config)
    assert "rebuilding BM25" not in caplog.text  # loaded, not rebuilt
    after = loaded.recall(query, k=3, first_stage="bm25")
    assert [(h.id, round(h.score, 5)) for h in after] == [(h.id, round(h.score, 5)) for h in before]
    loaded.delete(["food-pasta"])
    assert "food-pasta" not in [h.id for h in loaded.recall(query, k=5, first_stage="bm25")]
    loaded.add(["Risotto rice is stirred in salted stock until al dente."], ids=["food-risotto"])
    assert loaded.recall("risotto al dente", k=1, first_stage="bm25")[0].id == "food-risotto"
    loaded.save(tmp_path / "idx")
    again = ColrankIndex.load(tmp_path / "idx", tiny_index.config)
    ids = [h.id for h in again.recall("risotto al dente pasta", k=5, first_stage="bm25")]
    assert "food-risotto" in ids and "food-pasta" not in ids


def test_bm25_respects_filters(tiny_index: ColrankIndex) -> None:
    hits = tiny_index.search("capital", k=5, filter={"topic": "bio"}, first_stage="bm25")
    assert all(h.metadata["topic"] == "bio" for h in hits)
    hybrid = tiny_index.search("capital", k=3, filter={"topic": "bio"}, first_stage="hybrid")
    assert len(hybrid) == 3 and all(h.metadata["topic"] == "bio" for h in hybrid)


def test_cross_encoder_third_stage(tiny_config, tiny_cross_encoder) -> None:
    from sentence_transformers import CrossEncoder

    cfg = tiny_config.model_copy(
        update={
            "search": tiny_config.search.model_copy(
                update={"cross_encoder_model": tiny_cross_encoder, "cross_encoder_top": 6}
            )
        }
    )
    index = ColrankIndex(cfg)
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    index.add(texts, metas, ids)
    hits = index.search("capital of germany", k=3, candidates=10)
    assert len(hits) == 3
    assert [h.score for h in hits] == [h.cross_encoder_score for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    direct = CrossEncoder(tiny_cross_encoder, device="cpu").predict(
        [("capital of germany", h.text) for h in hits]
    )
    np.testing.assert_allclose(
        [h.score for h in hits], np.asarray(direct).ravel(), rtol=1e-4, atol=1e-5
    )
    # the cross-encoder only reorders the best 6 of 10 by the default (calibrated) score
    cand = index.candidate_scores(["capital of germany"], candidates=10)[0]
    fused = cand.final_scores
    top6 = {cand.ids[i] for i in np.argsort(-fused, kind="stable")[:6]}
    assert {h.id for h in hits} <= top6


def test_bm25_is_updated_in_place_on_add(tiny_config) -> None:
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    grown = ColrankIndex(tiny_config)
    grown.add(texts[:6], metas[:6], ids[:6])
    grown.recall("capital", k=3, first_stage="bm25")
    grown.add(texts[6:], metas[6:], ids[6:])
    fresh = ColrankIndex(tiny_config)
    fresh.add(texts, metas, ids)
    for query in ("capital city", "dense vectors", "yeast"):
        got = grown.recall(query, k=5, first_stage="bm25")
        want = fresh.recall(query, k=5, first_stage="bm25")
        assert [(h.id, round(h.score, 5)) for h in got] == [(h.id, round(h.score, 5)) for h in want]


def test_a_failed_bm25_update_refuses_the_whole_batch(tiny_config, monkeypatch) -> None:
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    index = ColrankIndex(tiny_config)
    index.add(texts[:6], metas[:6], ids[:6])

    def broken(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(BM25Index, "add_tokens", broken)
    with pytest.raises(MemoryError):
        index.add(texts[6:], metas[6:], ids[6:])
    monkeypatch.undo()
    assert len(index) == 6 and "food-bread" not in index  # nothing half-added
    assert_stores_agree(index)
    index.add(texts[6:], metas[6:], ids[6:])
    assert index.recall("yeast dough", k=1, first_stage="bm25")[0].id == "food-bread"
    assert_stores_agree(index)


def test_bm25_is_saved_even_if_never_queried(tiny_config, tmp_path) -> None:
    # an index built and saved without a lexical search (as `colrank index` does) must
    # still carry BM25, or every search process re-tokenises the whole corpus
    import json

    from colrank.store.local.snapshots import current_snapshot

    index = ColrankIndex(tiny_config)
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    index.add(texts, metas, ids)
    index.save(tmp_path / "idx")
    manifest = json.loads((current_snapshot(tmp_path / "idx") / "manifest.json").read_text())
    assert any(name.startswith("bm25/") for name in manifest["files"])
    loaded = ColrankIndex.load(tmp_path / "idx", tiny_config)
    assert loaded.recall("yeast dough", k=1, first_stage="bm25")[0].id == "food-bread"
