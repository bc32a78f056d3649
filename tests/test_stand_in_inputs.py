"""How a stand-in ColBERT reads text belongs to the stored tokens: saved, kept when reopened."""

from __future__ import annotations

import json
import zlib

import pytest

from colrank import ColrankConfig, ColrankIndex, ModelMismatchError
from colrank.config import DEFAULT_STAND_IN_INPUTS
from colrank.models.encoders import ColbertEncoder
from colrank.models.identity import check_stand_in_inputs
from colrank.store.local.snapshots import current_snapshot

from .conftest import CORPUS

QUERIES = ["capital of germany", "energy in cells", "why does bread rise?"]
WAYS = ("plain", "marked")


def reading(config: ColrankConfig, inputs: str) -> ColrankConfig:
    models = config.models.model_copy(update={"stand_in_inputs": inputs})
    return config.model_copy(update={"models": models})


def other(inputs: str) -> str:
    return "marked" if inputs == "plain" else "plain"


def filled(index: ColrankIndex) -> ColrankIndex:
    ids, texts, metas = zip(*CORPUS, strict=True)
    index.add(list(texts), [dict(m) for m in metas], list(ids))
    return index


def results(index: ColrankIndex) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 5)) for h in index.search(q, k=5)] for q in QUERIES]


def saved_manifest(root) -> tuple[object, dict]:
    path = current_snapshot(root) / "manifest.json"
    return path, json.loads(path.read_text())


def saved_before_the_setting(index: ColrankIndex, root) -> None:
    """Save ``index`` as colrank did before ``stand_in_inputs`` existed (no such entry)."""
    index.save(root)
    path, manifest = saved_manifest(root)
    del manifest["config"]["models"]["stand_in_inputs"]
    path.write_text(json.dumps(manifest))  # type: ignore[attr-defined]


@pytest.fixture
def marked_index(tiny_config) -> ColrankIndex:
    return filled(ColrankIndex(reading(tiny_config, "marked")))


def test_a_new_index_reads_the_default_way(tiny_config) -> None:
    index = ColrankIndex(tiny_config)
    assert index.config.models.stand_in_inputs == DEFAULT_STAND_IN_INPUTS
    assert index.colbert_encoder.stand_in_inputs == DEFAULT_STAND_IN_INPUTS


def test_an_index_saved_before_the_setting_keeps_reading_queries_marked(
    marked_index, tiny_config, tmp_path
) -> None:
    before = results(marked_index)
    plain = filled(ColrankIndex(reading(tiny_config, "plain")))
    assert results(plain) != before  # the way matters: read otherwise, scores change
    saved_before_the_setting(marked_index, tmp_path / "old")
    # no config (the saved one), or today's config with its default way
    for config in (None, tiny_config, reading(tiny_config, "plain")):
        opened = ColrankIndex.load(tmp_path / "old", config, trust_models=True)
        assert opened.config.models.stand_in_inputs == "marked"
        assert opened.colbert_encoder.stand_in_inputs == "marked"
        assert results(opened) == before
    opened.save(tmp_path / "again")  # saved again, it now says how it reads
    assert saved_manifest(tmp_path / "again")[1]["config"]["models"]["stand_in_inputs"] == "marked"


@pytest.mark.parametrize("inputs", WAYS)
def test_the_stored_way_wins_over_the_config_at_opening(tiny_config, tmp_path, inputs) -> None:
    index = filled(ColrankIndex(reading(tiny_config, inputs)))
    before = results(index)
    index.save(tmp_path / "idx")
    opened = ColrankIndex.load(tmp_path / "idx", reading(tiny_config, other(inputs)))
    assert opened.config.models.stand_in_inputs == inputs
    assert results(opened) == before


def test_a_given_encoder_reading_otherwise_is_refused(marked_index, tiny_config, tmp_path) -> None:
    saved_before_the_setting(marked_index, tmp_path / "old")
    plain = ColbertEncoder.load(
        tiny_config.models.colbert_model, tiny_config.runtime, stand_in_inputs="plain"
    )
    with pytest.raises(ModelMismatchError, match="stand_in_inputs='marked'"):
        ColrankIndex.load(tmp_path / "old", tiny_config, colbert_encoder=plain)
    marked = ColbertEncoder.load(
        tiny_config.models.colbert_model, tiny_config.runtime, stand_in_inputs="marked"
    )
    opened = ColrankIndex.load(tmp_path / "old", tiny_config, colbert_encoder=marked)
    assert results(opened) == results(marked_index)


def test_a_new_index_records_how_its_given_encoder_reads(tiny_config, tmp_path) -> None:
    plain = ColbertEncoder.load(
        tiny_config.models.colbert_model, tiny_config.runtime, stand_in_inputs="plain"
    )
    index = filled(ColrankIndex(reading(tiny_config, "marked"), colbert_encoder=plain))
    assert index.config.models.stand_in_inputs == "plain"
    index.save(tmp_path / "idx")
    opened = ColrankIndex.load(tmp_path / "idx", trust_models=True)
    assert opened.config.models.stand_in_inputs == "plain"


def test_copying_between_ways_is_refused_and_copies_nothing(marked_index, tiny_config) -> None:
    target = ColrankIndex(reading(tiny_config, "plain"))
    with pytest.raises(ModelMismatchError, match="stand_in_inputs"):
        target.copy_from(marked_index)
    assert len(target) == 0
    same = ColrankIndex(reading(tiny_config, "marked"))
    assert same.copy_from(marked_index) == len(marked_index)
    assert results(same) == results(marked_index)


def test_a_trained_checkpoint_ignores_the_setting() -> None:
    trained = ColrankConfig(models={"stand_in_inputs": "plain"})  # a hub ColBERT checkpoint
    check_stand_in_inputs("marked", trained, None)  # nothing to refuse: it reads its own way
    with pytest.raises(ModelMismatchError):
        check_stand_in_inputs("marked", ColrankConfig.offline(models=trained.models), None)


def test_a_database_collection_keeps_its_way(postgres_url, tiny_config, request) -> None:
    collection = f"t{zlib.crc32(request.node.nodeid.encode())}"
    first = ColrankIndex.open(postgres_url, collection, reading(tiny_config, "marked"), exact=True)
    first.backend.drop()
    try:
        before = results(filled(first))
        again = ColrankIndex.open(
            postgres_url, collection, reading(tiny_config, "plain"), exact=True
        )
        assert again.config.models.stand_in_inputs == "marked"
        assert results(again) == before
        again.close()
    finally:
        first.backend.drop()
        first.close()
