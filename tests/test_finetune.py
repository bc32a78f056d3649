"""Fine-tuning: a few steps on tiny data lower the dev loss and give a loadable model."""

from __future__ import annotations

import pytest
import torch

from colrank import ColrankConfig, ColrankIndex
from colrank.eval.corpus import BeirDataset
from colrank.models.loading import load_colbert
from colrank.training.finetune import (
    FinetuneConfig,
    corpus_triplets,
    finetune,
    mine_triplets,
    split_title,
)

from .conftest import CORPUS

QUESTIONS = {
    "q1": ("which city is the capital of france", "geo-paris"),
    "q2": ("german capital city", "geo-berlin"),
    "q3": ("italian capital on seven hills", "geo-rome"),
    "q4": ("where does the cell get its energy", "bio-mito"),
    "q5": ("genetic instructions molecule", "bio-dna"),
    "q6": ("proteins that speed up reactions", "bio-enzyme"),
    "q7": ("late interaction maxsim", "ir-colbert"),
    "q8": ("library for vector similarity search", "ir-faiss"),
    "q9": ("term frequency ranking function", "ir-bm25"),
    "q10": ("single vector passage encoders", "ir-dense"),
    "q11": ("how to cook noodles al dente", "food-pasta"),
    "q12": ("why dough rises with yeast", "food-bread"),
}


def dataset() -> BeirDataset:
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    queries = {q: text for q, (text, _) in QUESTIONS.items()}
    qrels = {q: {doc: 1} for q, (_, doc) in QUESTIONS.items()}
    return BeirDataset(ids, texts, metas, queries, qrels)


def test_mined_negatives_skip_positives(tiny_index) -> None:
    data = dataset()
    rows = mine_triplets(tiny_index, data.queries, data.qrels, negatives_per_pair=2, depth=5)
    assert len(rows) == 2 * len(QUESTIONS)
    by_text = {t: i for i, t, _ in CORPUS}
    for row in rows:
        qid = next(q for q, (text, _) in QUESTIONS.items() if text == row["query"])
        assert by_text[row["positive"]] == QUESTIONS[qid][1]
        assert by_text[row["negative"]] != QUESTIONS[qid][1]


TITLES = {"geo-paris": "Paris", "bio-dna": "DNA", "ir-faiss": "FAISS", "food-bread": "Bread"}


@pytest.fixture
def titled_index(tiny_config) -> ColrankIndex:
    """The tiny corpus where four documents have a title line (as BEIR documents get)."""
    index = ColrankIndex(tiny_config)
    for doc_id, text, meta in CORPUS:
        title = TITLES.get(doc_id)
        if title:
            index.add([f"{title}\n{text}"], [{**meta, "title": title}], [doc_id])
        else:
            index.add([text], [dict(meta)], [doc_id])
    return index


def test_split_title_only_splits_a_leading_title_line() -> None:
    assert split_title("DNA\nDNA carries genes.", {"title": "DNA"}) == ("DNA", "DNA carries genes.")
    assert split_title("DNA carries genes.", {"title": "DNA"}) == ("", "DNA carries genes.")
    assert split_title("DNA\n", {"title": "DNA"}) == ("", "DNA\n")  # no body: not a pair
    assert split_title("Plain text.", {}) == ("", "Plain text.")


def test_corpus_triplets_pair_titles_with_their_own_body(titled_index) -> None:
    bodies = {doc_id: text for doc_id, text, _ in CORPUS}
    rows = corpus_triplets(titled_index, limit=10, negatives_per_pair=2, depth=6)
    assert len(rows) == 2 * len(TITLES)  # every titled document, none of the others
    assert {r["query"] for r in rows} == set(TITLES.values())
    by_title = {title: doc_id for doc_id, title in TITLES.items()}
    for row in rows:
        own = by_title[row["query"]]
        assert row["positive"] == bodies[own]  # the body, without its title line
        assert row["negative"] in bodies.values() and row["negative"] != bodies[own]
    assert len(corpus_triplets(titled_index, limit=3, negatives_per_pair=1, depth=6)) == 3


def tiny_finetune(index, model_dir, runtime, out, **settings):
    """Fine-tune the tiny model on the tiny questions with small, fast settings."""
    base = {
        "batch_size": 4,
        "dev_fraction": 0.25,
        "negatives_per_pair": 2,
        "mining_depth": 6,
        "document_length": 32,
    }
    config = FinetuneConfig(**{**base, **settings})
    return finetune(model_dir, dataset(), out, index=index, config=config, runtime=runtime)


def test_corpus_pairs_are_added_to_the_training_rows(
    titled_index, tiny_model_dir, tiny_config, tmp_path
) -> None:
    result = tiny_finetune(
        titled_index,
        tiny_model_dir,
        tiny_config.runtime,
        tmp_path / "ft",
        max_steps=1,
        eval_steps=1,
        corpus_pairs=2,
    )
    assert result.corpus_triplets == 4 and result.train_triplets == 18 + 4


def test_finetune_lowers_dev_loss_and_saves_a_loadable_model(
    tiny_index, tiny_model_dir, tiny_config, tmp_path
) -> None:
    result = tiny_finetune(
        tiny_index,
        tiny_model_dir,
        tiny_config.runtime,
        tmp_path / "ft",
        max_steps=12,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        eval_steps=6,
    )
    assert result.steps == 12 and result.train_triplets == 18 and result.dev_triplets == 3
    assert result.corpus_triplets == 0
    assert result.train_loss_after < result.train_loss_before
    assert result.dev_accuracy_after is not None
    assert (tmp_path / "ft" / "colrank_finetune.json").is_file()
    assert not (tmp_path / "ft" / "checkpoints").exists()
    saved = load_colbert(str(tmp_path / "ft"), "cpu", torch.float32)
    assert saved.document_length == 128  # the encoder's own length, not the training cut (32)
    trained = ColrankIndex(
        ColrankConfig(
            models={"dense_model": tiny_model_dir, "colbert_model": str(tmp_path / "ft")},
            runtime=tiny_config.runtime,
        )
    )
    ids, texts, metas = (list(x) for x in zip(*CORPUS, strict=True))
    trained.add(texts, metas, ids)
    hits = trained.search("german capital city", k=3, first_stage="dense", rerank_fusion="none")
    assert len(hits) == 3 and all(h.colbert_score is not None for h in hits)


def test_reencode_tokens_switches_the_reranker(tiny_index, tiny_model_dir, tmp_path) -> None:
    from colrank.models.loading import colbert_from_sentence_transformer

    other = colbert_from_sentence_transformer(tiny_model_dir, embedding_size=16)  # 16-dim ColBERT
    other.save(str(tmp_path / "other"))
    before = tiny_index.recall("bread", k=5, first_stage="dense")
    tiny_index.reencode_tokens(str(tmp_path / "other"))
    stats = tiny_index.stats()
    assert stats["colbert_dim"] == 16 and stats["documents"] == len(CORPUS)
    assert [h.id for h in tiny_index.recall("bread", k=5, first_stage="dense")] == [
        h.id for h in before
    ]
    hits = tiny_index.search("bread", k=3, first_stage="dense", rerank_fusion="none")
    assert len(hits) == 3 and tiny_index.config.models.colbert_model == str(tmp_path / "other")
    tiny_index.save(tmp_path / "idx")
    assert ColrankIndex.load(tmp_path / "idx", trust_models=True).colbert_encoder.dim == 16
