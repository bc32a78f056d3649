"""ColrankIndex (the facade) end to end with a tiny random model (fast, offline)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from colrank import (
    ColrankConfig,
    ColrankIndex,
    CorruptIndexError,
    DenseEncoder,
    DimensionMismatchError,
    Document,
    DuplicateIdError,
    EmptyCorpusError,
    EmptyQueryError,
    IndexNotFoundError,
    InvalidFilterError,
    InvalidInputError,
    ModelMismatchError,
    UnknownIdError,
)
from colrank.store.local.docstore import DocStore
from colrank.store.local.snapshots import CURRENT_FILE, current_snapshot

from .conftest import CORPUS, assert_stores_agree

QUERIES = ["capital of germany", "energy in cells", "late interaction retrieval", "bread"]


def ranking(hits):
    return [(h.id, round(h.score, 4), h.rank) for h in hits]


def test_search_returns_k_ranked_hits_with_both_scores(tiny_index: ColrankIndex) -> None:
    hits = tiny_index.search("capital of germany", k=5, candidates=8)
    assert len(hits) == 5
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    by_id = {d[0]: d for d in CORPUS}
    for h in hits:
        assert h.text == by_id[h.id][1] and h.metadata == by_id[h.id][2]
        assert h.dense_score is not None


def test_search_scores_are_maxsim_of_stored_tokens(tiny_index: ColrankIndex) -> None:
    # the stored-token score must equal re-encoding the same documents at query time
    hits = tiny_index.search("energy in cells", k=4, candidates=12)
    # id-less texts are encoded afresh (an indexed id would reuse the stored tokens)
    fresh = tiny_index.rerank("energy in cells", [h.text for h in hits])
    stored = [h.colbert_score for h in hits]
    for h in fresh:
        assert h.colbert_score == pytest.approx(stored[h.position], abs=2e-2)  # fp16 storage


def test_save_load_gives_identical_results(tiny_index: ColrankIndex, tiny_config, tmp_path) -> None:
    before = [ranking(h) for h in tiny_index.search_many(QUERIES, k=5, candidates=10)]
    tiny_index.save(tmp_path / "idx")
    loaded = ColrankIndex.load(tmp_path / "idx", tiny_config)
    after = [ranking(h) for h in loaded.search_many(QUERIES, k=5, candidates=10)]
    assert before == after
    assert loaded.get(["geo-rome"])[0].metadata == {"topic": "geo", "year": 2020}


def test_add_and_delete_keep_all_stores_in_agreement(tiny_index: ColrankIndex, tmp_path) -> None:
    tiny_index.delete(["geo-berlin", "ir-faiss"])
    tiny_index.add(["Madrid is the capital of Spain."], [{"topic": "geo"}], ["geo-madrid"])
    assert len(tiny_index) == len(CORPUS) - 1
    assert "geo-berlin" not in tiny_index and "geo-madrid" in tiny_index
    for hits in tiny_index.search_many(QUERIES, k=len(CORPUS), candidates=len(CORPUS)):
        ids = {h.id for h in hits}
        assert not ids & {"geo-berlin", "ir-faiss"}
        assert len(hits) == len(CORPUS) - 1
    assert_stores_agree(tiny_index)
    tiny_index.save(tmp_path / "idx")  # save compacts; reload agrees
    loaded = ColrankIndex.load(tmp_path / "idx", tiny_index.config)
    assert len(loaded) == len(tiny_index) and "geo-berlin" not in loaded


def test_filter_returns_only_matches_and_still_fills_k(tiny_index: ColrankIndex) -> None:
    # 'bio' docs are not the dense top candidates for this query, yet k=3 is filled
    hits = tiny_index.search(
        "capital city of a country", k=3, candidates=3, filter={"topic": "bio"}
    )
    assert len(hits) == 3 and {h.metadata["topic"] for h in hits} == {"bio"}
    hits = tiny_index.search("anything", k=5, filter={"year": {"$gte": 2021}})
    assert {h.id for h in hits} == {"geo-berlin", "bio-dna", "bio-enzyme"}
    assert tiny_index.search("anything", k=5, filter={"topic": "none"}) == []


def test_dense_search_is_the_exact_cosine_top_k(tiny_index: ColrankIndex) -> None:
    hits = tiny_index.dense_search("pasta", k=4)
    ids, texts, _ = zip(*CORPUS, strict=True)
    docs = tiny_index.dense_encoder.encode(list(texts), progress=False)
    query = tiny_index.dense_encoder.encode(["pasta"], progress=False)[0]
    cosine = docs @ query
    best = np.argsort(-cosine, kind="stable")[:4]
    assert [h.id for h in hits] == [ids[i] for i in best]  # brute force over the corpus
    np.testing.assert_allclose([h.score for h in hits], cosine[best], rtol=1e-5)
    assert all(h.score == h.dense_score for h in hits)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda ix: ix.search(""), EmptyQueryError),
        (lambda ix: ix.search("   "), EmptyQueryError),
        (lambda ix: ix.search(42), InvalidInputError),
        (lambda ix: ix.search("q", k=0), InvalidInputError),
        (lambda ix: ix.search("q", k=-1), InvalidInputError),
        (lambda ix: ix.search("q", k=10, candidates=5), InvalidInputError),
        (lambda ix: ix.search("q", filter={"year": {"$bad": 1}}), InvalidFilterError),
        (lambda ix: ix.search("q", filter="topic=geo"), InvalidFilterError),
        (lambda ix: ix.add([]), EmptyCorpusError),
        (lambda ix: ix.add("just a string"), InvalidInputError),
        (lambda ix: ix.add(["ok", 3]), InvalidInputError),
        (lambda ix: ix.add(["ok", ""]), InvalidInputError),
        (lambda ix: ix.add(["a", "b"], ids=["x", "x"]), DuplicateIdError),
        (lambda ix: ix.add(["a"], ids=["geo-paris"]), DuplicateIdError),
        (lambda ix: ix.add(["a"], metadatas=[{"f": object()}]), InvalidInputError),
        (lambda ix: ix.add(["a"], metadatas=[{}, {}]), InvalidInputError),
        (lambda ix: ix.delete(["nope", "geo-paris"]), UnknownIdError),
        (lambda ix: ix.delete("geo-paris"), InvalidInputError),
        (lambda ix: ix.rerank("q", "text"), InvalidInputError),
        (lambda ix: ix.search("bread \ud800"), InvalidInputError),
        (lambda ix: ix.add(["ok", "bad \udcff text"]), InvalidInputError),
        (lambda ix: ix.get("geo-paris"), InvalidInputError),
        (lambda ix: ix.get([1]), InvalidInputError),
        (lambda ix: ix.delete(["geo-paris"], missing="sometimes"), InvalidInputError),
        (lambda ix: ix.add(["a"], ids=["new"], on_conflict="merge"), InvalidInputError),
        (lambda ix: ix.search("q", filter={"tags": {"$exists": "no"}}), InvalidFilterError),
        (lambda ix: ix.rerank("q", [3]), InvalidInputError),
    ],
)
def test_bad_input_raises_specific_errors(tiny_index: ColrankIndex, call, error) -> None:
    n = len(tiny_index)
    with pytest.raises(error):
        call(tiny_index)
    assert len(tiny_index) == n  # nothing half-done
    assert "geo-paris" in tiny_index


def test_a_huge_query_is_cut_with_a_warning(tiny_index: ColrankIndex) -> None:
    from colrank.validation import MAX_QUERY_CHARS

    with pytest.warns(UserWarning, match="cut to"):
        hits = tiny_index.search("bread yeast " * 2000, k=1)
    assert hits[0].id == "food-bread" and MAX_QUERY_CHARS == 4096


def test_failed_add_leaves_index_unchanged(tiny_index: ColrankIndex, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # the document store fails after FAISS, the token store and BM25 took the batch
    monkeypatch.setattr(DocStore, "add", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        tiny_index.upsert(["new doc", "Paris, again."], ids=["new", "geo-paris"])
    monkeypatch.undo()
    assert len(tiny_index) == len(CORPUS) and "new" not in tiny_index
    assert tiny_index.get(["geo-paris"])[0].text == CORPUS[0][1]  # not replaced
    assert_stores_agree(tiny_index)
    assert tiny_index.add(["new doc"], ids=["new"]) == ["new"]
    assert_stores_agree(tiny_index)


def test_a_codec_that_cannot_train_refuses_the_first_batch_whole(tiny_config) -> None:
    store = tiny_config.token_store.model_copy(update={"codec": "pq8"})
    index = ColrankIndex(tiny_config.model_copy(update={"token_store": store}))
    with pytest.raises(InvalidInputError, match="256 tokens"):
        index.add(["too few tokens to train product quantization"], ids=["a"])
    assert len(index) == 0 and index.search("tokens") == []


def test_rerank_external_documents_uses_content_cache(tiny_index: ColrankIndex) -> None:
    docs = [
        Document("FAISS searches vectors.", "a", {"s": 1}),
        "Bread needs yeast.",
        "ColBERT uses MaxSim.",
    ]
    encoders = tiny_index.encoders
    calls: list[int] = []
    real = encoders.encode_documents

    def counting(texts, **kw):
        calls.append(len(texts))
        return real(texts, **kw)

    encoders.encode_documents = counting  # both kinds of the unseen texts, in one call
    try:
        first = tiny_index.rerank("vector search", docs, k=2)
        second = tiny_index.rerank("yeast", [*docs, "A new one."])
    finally:
        del encoders.encode_documents
    assert calls == [3, 1]  # second call encodes only the unseen document
    assert len(first) == 2 and {h.position for h in second} == {0, 1, 2, 3}
    top = next(h for h in second if h.position == 0)
    assert top.id == "a" and top.metadata == {"s": 1}
    assert top.dense_score is not None and top.colbert_score is not None  # every stage
    # a document scores the same on its first sight (encoded) and later ones (cached)
    again = tiny_index.rerank("vector search", docs, k=2)
    assert [(h.id, h.score, h.colbert_score) for h in again] == [
        (h.id, h.score, h.colbert_score) for h in first
    ]
    assert tiny_index.rerank("q", []) == []


def test_long_documents_are_truncated_with_a_warning(tiny_config, caplog) -> None:
    index = ColrankIndex(
        tiny_config.model_copy(
            update={"models": tiny_config.models.model_copy(update={"document_length": 16})}
        )
    )
    with caplog.at_level(logging.WARNING, logger="colrank.models.encoders"):
        index.add(["word " * 100, "short text"], ids=["long", "short"])
    assert "truncated" in caplog.text and "1 of 2" in caplog.text
    assert "long" in index  # kept, not dropped
    with index.backend.read() as view:
        _, lengths = view.token_codes(list(view.iids_for(["long"]).values()))
    assert lengths[0] <= 16


def test_load_errors(tiny_index: ColrankIndex, tmp_path) -> None:
    with pytest.raises(IndexNotFoundError):
        ColrankIndex.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFoundError):
        ColrankIndex.load(tmp_path / "empty")


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_corrupted_index_is_detected(tiny_index: ColrankIndex, tmp_path, damage) -> None:
    root = tiny_index.save(tmp_path / "idx")
    tokens = current_snapshot(root) / "tokens.npy"
    data = bytearray(tokens.read_bytes())
    if damage == "truncate":
        tokens.write_bytes(data[:-64])
    elif damage == "flip":
        data[-10] ^= 0xFF
        tokens.write_bytes(bytes(data))
    else:
        tokens.unlink()
    with pytest.raises(CorruptIndexError):
        ColrankIndex.load(root, tiny_index.config)


def test_crash_mid_save_keeps_previous_index(
    tiny_index: ColrankIndex, tmp_path, monkeypatch
) -> None:
    root = tiny_index.save(tmp_path / "idx")
    before = (root / CURRENT_FILE).read_text()
    tiny_index.add(["Lisbon is the capital of Portugal."], ids=["geo-lisbon"])

    def crash(directory):
        (directory / "docs.sqlite").write_bytes(b"partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(DocStore, "save", lambda self, directory: crash(directory))
    with pytest.raises(KeyboardInterrupt):
        tiny_index.save(root)
    assert (root / CURRENT_FILE).read_text() == before
    assert len(list(root.glob("snapshot-*"))) == 1  # the partial snapshot was removed
    loaded = ColrankIndex.load(root, tiny_index.config)
    assert len(loaded) == len(CORPUS) and "geo-lisbon" not in loaded


def test_loading_with_other_models_fails_clearly(tiny_index, tmp_path, minilm_config) -> None:
    root = tiny_index.save(tmp_path / "idx")
    with pytest.raises(ModelMismatchError, match="built with the dense model"):
        ColrankIndex.load(root, minilm_config)  # names other models than the saved ones
    other = DenseEncoder.load(minilm_config.models.dense_model, minilm_config.runtime)
    renamed = DenseEncoder(other.model, other.runtime, tiny_index.config.models.dense_model)
    with pytest.raises(DimensionMismatchError, match="dimension 32"):
        ColrankIndex.load(
            root, dense_encoder=renamed, trust_models=True
        )  # same name, 384 dimensions


def test_load_keeps_the_saved_index_type_and_codec(tiny_config, tmp_path) -> None:
    store = tiny_config.token_store.model_copy(update={"codec": "int8"})
    index = ColrankIndex(tiny_config.model_copy(update={"token_store": store}))
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    index.add(texts, metas, ids)
    index.save(tmp_path / "idx")
    hnsw = tiny_config.dense_index.model_copy(update={"kind": "hnsw"})
    asked = tiny_config.model_copy(update={"dense_index": hnsw})  # and float16 tokens
    loaded = ColrankIndex.load(tmp_path / "idx", asked)
    assert loaded.stats()["codec"] == "int8" and loaded.stats()["dense_index"] == "flat"
    assert loaded.config.token_store.codec == "int8" and loaded.config.dense_index.kind == "flat"


def test_saves_keep_the_previous_snapshot_and_only_remove_their_own(tiny_index, tmp_path) -> None:
    root = tiny_index.save(tmp_path / "idx")
    first = (root / CURRENT_FILE).read_text().strip()
    (root / "snapshot-holiday-photos").mkdir()  # not colrank's: never removed
    tiny_index.delete(["food-pasta"])
    tiny_index.save(root)
    second = (root / CURRENT_FILE).read_text().strip()
    tiny_index.delete(["food-bread"])
    tiny_index.save(root)
    third = (root / CURRENT_FILE).read_text().strip()
    left = sorted(p.name for p in root.glob("snapshot-*"))
    # the live one and the one before it (a reader may still be opening it)
    assert left == sorted([second, third, "snapshot-holiday-photos"]) and first not in left
    loaded = ColrankIndex.load(root, tiny_index.config)
    assert "food-pasta" not in loaded and "food-bread" not in loaded


def test_empty_index_search_returns_nothing(tiny_config, tmp_path) -> None:
    index = ColrankIndex(tiny_config)
    assert index.search("q") == []
    with pytest.raises(InvalidInputError, match="empty"):
        index.save(tmp_path / "x")


def test_offline_config_from_env() -> None:
    cfg = ColrankConfig.from_env(
        {"COLRANK_OFFLINE": "1", "COLRANK_DEVICE": "cpu", "COLRANK_COLBERT_MODEL": "/m"}
    )
    assert cfg.models.dense_model == "offline:minilm"
    assert cfg.models.colbert_model == "/m" and cfg.runtime.device == "cpu"
    default = ColrankConfig.from_env({})
    assert default.models.colbert_model == "answerdotai/answerai-colbert-small-v1"
    with pytest.raises(ValueError, match="device"):
        ColrankConfig.from_env({"COLRANK_DEVICE": "tpu"})


def test_int8_codec_and_token_pooling_keep_rankings_close(tiny_config) -> None:
    # queries of 32 tokens ([MASK]-padded): over the random tiny model a 5-token plain
    # query's score rests on 5 maxima, so pooling moves candidates more (rho 0.31 measured)
    models = tiny_config.models.model_copy(update={"stand_in_inputs": "marked"})
    tiny_config = tiny_config.model_copy(update={"models": models})
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    plain = ColrankIndex(tiny_config)
    plain.add(texts, metas, ids)
    store = tiny_config.token_store.model_copy(update={"codec": "int8", "pool_factor": 2})
    small = ColrankIndex(tiny_config.model_copy(update={"token_store": store}))
    small.add(texts, metas, ids)
    assert small.stats()["tokens"] < 0.75 * plain.stats()["tokens"]
    assert small.stats()["token_bytes"] < 0.4 * plain.stats()["token_bytes"]
    assert small.stats()["codec"] == "int8" and plain.stats()["bytes_per_token"] == 64
    int8 = ColrankIndex(
        tiny_config.model_copy(update={"token_store": store.model_copy(update={"pool_factor": 1})})
    )
    int8.add(texts, metas, ids)
    for q in QUERIES:
        a = plain.candidate_scores([q], candidates=12, first_stage="dense")[0]
        b = int8.candidate_scores([q], candidates=12, first_stage="dense")[0]
        c = small.candidate_scores([q], candidates=12, first_stage="dense")[0]
        assert a.ids == b.ids == c.ids  # same candidates: only the token storage differs
        # int8 keeps each MaxSim score within 1%; pooling keeps the ColBERT ranking close
        np.testing.assert_allclose(b.colbert_scores, a.colbert_scores, rtol=1e-2)
        rho = np.corrcoef(
            np.argsort(np.argsort(a.colbert_scores)), np.argsort(np.argsort(c.colbert_scores))
        )[0, 1]
        assert rho > 0.6, (q, rho)  # a random order of 12 gives about 0 +- 0.3


def test_recode_tokens_shrinks_storage_and_survives_save_load(
    tiny_index: ColrankIndex, tmp_path
) -> None:
    before = tiny_index.stats()
    n_tokens, n_bytes = before["tokens"], before["token_bytes"]
    ref = tiny_index.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    tiny_index.recode_tokens("int8")
    after = tiny_index.stats()
    assert after["tokens"] == n_tokens and after["token_bytes"] < 0.65 * n_bytes
    got = tiny_index.candidate_scores(["bread"], candidates=12, first_stage="dense")[0]
    assert got.ids == ref.ids
    np.testing.assert_allclose(got.colbert_scores, ref.colbert_scores, rtol=5e-3)  # int8 precision
    tiny_index.recode_tokens(pool_factor=2)
    assert tiny_index.stats()["tokens"] < 0.75 * n_tokens
    assert (
        tiny_index.config.token_store.codec == "int8"
        and tiny_index.config.token_store.pool_factor == 2
    )
    tiny_index.save(tmp_path / "idx")
    loaded = ColrankIndex.load(tmp_path / "idx", tiny_index.config)
    assert loaded.stats()["codec"] == "int8" and len(loaded) == len(tiny_index)


def test_saved_search_settings_are_the_users_choices_not_defaults(
    tiny_index: ColrankIndex, tiny_config, tmp_path
) -> None:
    import json

    from colrank.config import SearchConfig

    tiny_index.save(tmp_path / "plain")
    snapshot = current_snapshot(tmp_path / "plain")
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["config"]["search"] == {}  # defaults are not frozen into the index
    assert ColrankIndex.load(tmp_path / "plain", trust_models=True).config.search == SearchConfig()
    # a setting the user chose survives save and load
    chosen = ColrankIndex.load(tmp_path / "plain", trust_models=True)
    chosen.config = chosen.config.model_copy(
        update={"search": SearchConfig(first_stage="dense", colbert_weight=0.7)}
    )
    chosen.save(tmp_path / "chosen")
    again = ColrankIndex.load(tmp_path / "chosen", trust_models=True).config.search
    assert (again.first_stage, again.colbert_weight) == ("dense", 0.7)


def test_unfused_reranking_of_outside_documents_scores_by_maxsim_alone(tiny_index) -> None:
    from colrank.config import SearchConfig

    docs = ["FAISS searches vectors.", "Bread needs yeast.", "ColBERT uses MaxSim."]
    unfused = tiny_index.config.model_copy(update={"search": SearchConfig(rerank_fusion="none")})
    plain = ColrankIndex(unfused).rerank("yeast", docs)  # empty indexes: outside documents
    fused = ColrankIndex(tiny_index.config).rerank("yeast", docs)
    assert all(h.score == h.colbert_score and h.dense_score is None for h in plain)
    by_position = {h.position: h.colbert_score for h in fused}
    for h in plain:  # the same tokens, with or without the dense vectors beside them
        assert h.colbert_score == pytest.approx(by_position[h.position], abs=1e-5)


def test_a_few_documents_show_no_progress_bar(tiny_config, capsys) -> None:
    runtime = tiny_config.runtime.model_copy(update={"show_progress": True})
    index = ColrankIndex(tiny_config.model_copy(update={"runtime": runtime}))
    index.add(["one", "two", "three"])
    assert "%|" not in capsys.readouterr().err  # one batch: no bar
    many = [f"document number {i} " * 20 for i in range(40)]  # several token-budget batches
    index.add(many)
    assert "%|" in capsys.readouterr().err
