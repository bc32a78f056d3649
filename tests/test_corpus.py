"""Corpus readers: BEIR, JSONL and folders."""

from __future__ import annotations

import json

import pytest

from colrank import InvalidInputError
from colrank.eval.corpus import load_beir, read_corpus


def write_beir(root, docs, queries, qrels, split="test"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, d, r in qrels]
    (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")


def test_load_beir_keeps_judged_queries(tmp_path) -> None:
    write_beir(
        tmp_path,
        [{"_id": "1", "title": "T", "text": "body"}, {"_id": "2", "title": "", "text": "x"}],
        [{"_id": "q1", "text": "question"}, {"_id": "q2", "text": "unjudged"}],
        [("q1", "1", 1)],
    )
    data = load_beir(tmp_path)
    assert data.ids == ["1", "2"]
    assert data.texts == ["T\nbody", "x"]
    assert data.queries == {"q1": "question"} and data.qrels == {"q1": {"1": 1}}


def test_folder_of_text_files(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\ntext")
    (tmp_path / "sub" / "b.txt").write_text("b text")
    (tmp_path / "c.bin").write_bytes(b"\x00")
    ids, texts, metas = read_corpus(tmp_path)
    assert ids == ["a.md", "sub/b.txt"] and metas[1] == {"source": "sub/b.txt"}


def test_bad_corpus_paths(tmp_path) -> None:
    with pytest.raises(InvalidInputError):
        read_corpus(tmp_path / "missing")
    (tmp_path / "bad.jsonl").write_text("{not json}\n")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        read_corpus(tmp_path / "bad.jsonl")
    with pytest.raises(InvalidInputError, match="missing"):
        load_beir(tmp_path)


def test_real_scifact_loads(scifact_dir) -> None:
    data = load_beir(scifact_dir, "test")
    assert len(data.ids) == 5183 and len(data.queries) == 300
