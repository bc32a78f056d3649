"""The colrank command on a tiny BEIR dataset with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

from colrank.cli import main

from .conftest import CORPUS
from .test_corpus import write_beir


def model_args(tiny_model_dir: str) -> list[str]:
    return [
        "--dense-model",
        tiny_model_dir,
        "--colbert-model",
        tiny_model_dir,
        "--device",
        "cpu",
        "--quiet",
    ]


def test_index_search_eval(tmp_path, tiny_model_dir, capsys) -> None:
    data = tmp_path / "beir"
    write_beir(
        data,
        [{"_id": i, "title": "", "text": t, **m} for i, t, m in CORPUS],
        [{"_id": "q1", "text": "capital of italy"}, {"_id": "q2", "text": "yeast bread"}],
        [("q1", "geo-rome", 1), ("q2", "food-bread", 1)],
    )
    index_dir = tmp_path / "idx"
    assert main(["index", str(data), str(index_dir), *model_args(tiny_model_dir)]) == 0
    assert f"indexed {len(CORPUS)} documents" in capsys.readouterr().out

    assert (
        main(
            [
                "search",
                "--trust-models",
                str(index_dir),
                "capital",
                "-k",
                "3",
                "--json",
                "--filter",
                '{"topic": "food"}',
            ]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and {h["metadata"]["topic"] for h in hits} == {"food"}

    assert main(["search", str(index_dir), "capital", "-k", "2", "--trust-models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "score", "colbert", "dense", "bm25", "id", "text"]
    assert len(table) == 4  # header, rule, two hits
    assert (
        main(
            [
                "search",
                str(index_dir),
                "capital",
                "-k",
                "2",
                "--first-stage",
                "bm25",
                "--json",
                "--trust-models",
            ]
        )
        == 0
    )
    assert all(h["dense_score"] is None for h in json.loads(capsys.readouterr().out))

    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--index",
                str(index_dir),
                "--candidates",
                "2,5",
                "--json",
                "--quiet",
                "--trust-models",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    # "default" is the index's own search() (the default a user gets), by name
    assert set(report) == {"default", "dense", "dense>colbert@2", "dense>colbert@5"}
    assert all(0.0 <= v <= 1.0 for run in report.values() for v in run.values())


def test_errors_are_reported_not_raised(tmp_path, capsys) -> None:
    assert main(["search", str(tmp_path / "missing"), "q"]) == 2
    assert "no index at" in capsys.readouterr().err


def test_bench_command_reports_every_section(tmp_path, tiny_index, capsys) -> None:
    tiny_index.save(tmp_path / "idx")
    queries = tmp_path / "q.txt"
    queries.write_text("capital of germany\nbread\n\nenergy in cells\n")
    args = [
        "bench",
        str(tmp_path / "idx"),
        "--queries",
        str(queries),
        "--reencode",
        "1",
        "--candidates",
        "8",
        "--trust-models",
    ]
    assert main([*args, "--indexing", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["default_search"]["total"]["n"] == 3
    # one backbone call encodes the query for both stages (the tiny model serves both)
    assert {"encode", "bm25", "maxsim"} <= set(report["default_search"]["stages"])
    assert report["rerank"]["reencode"]["n"] == 1 and report["rerank"]["speedup_p50"] > 0
    assert report["rerank"]["max_abs_score_diff"] < 0.05  # same model, fp16 storage
    assert (
        report["indexing"]["documents"] == 6 and report["indexing"]["max_abs_embedding_diff"] < 1e-4
    )
    assert main(args) == 0
    assert "rerank 8 candidates" in capsys.readouterr().out


def test_finetune_command_trains_and_saves_a_model(tmp_path, tiny_model_dir, capsys) -> None:
    from .test_finetune import QUESTIONS

    data = tmp_path / "beir"
    write_beir(
        data,
        [{"_id": i, "title": i.split("-")[1], "text": t, **m} for i, t, m in CORPUS],
        [{"_id": q, "text": text} for q, (text, _) in QUESTIONS.items()],
        [(q, doc, 1) for q, (_, doc) in QUESTIONS.items()],
        split="train",
    )
    out = tmp_path / "model"
    mining = tmp_path / "mining-index"  # built with the given models, saved for reuse
    args = ["finetune", "--base", tiny_model_dir, "--data", str(data), "--out", str(out)]
    settings = ["--max-steps", "2", "--batch-size", "4", "--corpus-pairs", "3"]
    assert main([*args, "--index", str(mining), *settings, *model_args(tiny_model_dir)]) == 0
    printed = capsys.readouterr().out
    start = printed.index('{\n  "model_dir"')  # the trainer also prints its own logs
    result = json.loads(printed[start : printed.index("\n}", start) + 2])
    assert result["steps"] == 2 and result["corpus_triplets"] == 3 * 2
    assert (out / "colrank_finetune.json").is_file() and (mining / "CURRENT").is_file()
    trained = ["--dense-model", tiny_model_dir, "--colbert-model", str(out), "--quiet"]
    assert main(["index", str(data), str(tmp_path / "idx"), *trained]) == 0
    assert (
        main(["search", str(tmp_path / "idx"), "yeast", "-k", "1", "--json", "--trust-models"]) == 0
    )
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["colbert_score"] is not None


def test_a_folder_is_split_into_overlapping_passages(tmp_path, tiny_model_dir, capsys) -> None:
    from transformers import AutoTokenizer

    folder = tmp_path / "notes"
    folder.mkdir()
    sentences = [
        f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)
    ]
    (folder / "long.md").write_text(" ".join(sentences))
    (folder / "short.txt").write_text("Yeast makes bread rise.")
    index_dir = tmp_path / "idx"
    args = ["index", str(folder), str(index_dir), "--passage-tokens", "40", "--overlap", "8"]
    assert main([*args, *model_args(tiny_model_dir)]) == 0
    capsys.readouterr()
    from colrank import ColrankIndex

    index = ColrankIndex.load(index_dir, trust_models=True)
    ids = index.ids()
    long_ids = [i for i in ids if i.startswith("long.md#")]
    assert "short.txt#0" in ids and len(long_ids) >= 10  # one file, many passages
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs = index.get(long_ids)
    assert all(len(tokenizer.encode(d.text, add_special_tokens=False)) <= 40 for d in docs)
    assert all(d.metadata["source"] == "long.md" for d in docs)
    joined = " ".join(d.text for d in docs)
    assert all(s in joined for s in sentences)  # nothing lost (and nothing truncated)
    first, second = docs[0].text.split(), docs[1].text.split()
    assert first[-1] in second[:10]  # consecutive passages overlap
    assert (
        main(
            [
                "index",
                str(folder),
                str(tmp_path / "i2"),
                "--chunk",
                "0",
                *model_args(tiny_model_dir),
            ]
        )
        == 2
    )
    assert "--chunk" in capsys.readouterr().err


def test_version_and_every_flag_has_help(capsys) -> None:

    from colrank import __version__
    from colrank.cli import build_parser

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"colrank {__version__}"
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # argparse's own structure
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"colrank {name} {action.option_strings or action.dest}"


def bad_cli_calls(tmp: Path, model: list[str]) -> dict[str, list[str]]:
    """Careless command lines, by name; ``tmp`` holds an index ``idx`` made with ``model``."""

    def write(name: str, content: str | bytes) -> str:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return str(path)

    good = str(tmp / "good.jsonl")
    notes = tmp / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "a.txt").write_text("Yeast makes bread rise. " * 40)
    queries = write("q.txt", "bread\n")
    search = ["search", str(tmp / "idx")]
    trusted = [*search, "bread", "--trust-models"]
    deep = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"

    def index(corpus: str, *flags: str) -> list[str]:
        out = tmp / f"out-{len(flags)}-{Path(corpus).stem}"
        return ["index", corpus, str(out), *model, *flags]  # the case's flags come last

    return {
        "filter-not-json": [*trusted, "--filter", "topic=geo"],
        "filter-operator": [*trusted, "--filter", '{"year": {"$regex": "x"}}'],
        "filter-kind": [*trusted, "--filter", '{"year": {"$gt": "2000"}}'],
        "filter-list": [*trusted, "--filter", "[1, 2]"],
        "filter-deep-json": [*trusted, "--filter", deep],
        "search-missing-index": ["search", str(tmp / "missing"), "bread"],
        "search-a-file": ["search", write("file.txt", "not an index"), "bread"],
        "search-blank-query": [*search, "   ", "--trust-models"],
        "search-surrogate": [*search, "bread \udcff", "--trust-models"],
        "search-k-zero": [*trusted, "-k", "0"],
        "search-k-negative": [*trusted, "-k", "-3"],
        "search-k-text": [*trusted, "-k", "ten"],
        "search-candidates-below-k": [*trusted, "-k", "5", "--candidates", "1"],
        "search-untrusted-model": [*search, "bread"],
        "search-flag-without-value": [*trusted, "--collection"],
        "unknown-command": ["frobnicate"],
        "corpus-null-line": index(write("null.jsonl", '{"_id": "a", "text": "x"}\nnull\n')),
        "corpus-latin1": index(write("latin.jsonl", b'{"_id": "a", "text": "caf\xe9"}\n')),
        "corpus-bad-json": index(write("bad.jsonl", '{"_id": "a", "text": "x"\n')),
        "corpus-text-number": index(write("num.jsonl", '{"_id": "a", "text": 5}\n')),
        "corpus-duplicate-ids": index(write("dup.jsonl", '{"_id": "a", "text": "x"}\n' * 2)),
        "corpus-nan-metadata": index(write("nan.jsonl", '{"_id": "a", "text": "x", "s": NaN}\n')),
        "corpus-empty": index(write("empty.jsonl", "")),
        "corpus-missing": index(str(tmp / "nope.jsonl")),
        "index-chunk-zero": index(good, "--chunk", "0"),
        "index-device-tpu": index(good, "--device", "tpu"),
        "index-document-length-zero": index(good, "--document-length", "0"),
        "index-into-a-file": ["index", good, str(tmp / "file.txt"), *model],
        "index-no-target": ["index", good, *model],
        "index-store-not-a-url": ["index", good, "--store", "mysql://x/y", *model],
        "index-into-a-url": ["index", good, "mysql://x/y", *model],
        "index-onto-an-index": ["index", good, str(tmp / "idx"), *model],
        "index-overwrite-and-append": ["index", good, str(tmp / "idx"), "--overwrite", "--append"],
        "search-not-a-database-url": ["search", "s3://bucket/idx", "bread"],
        "passages-zero-tokens": index(str(notes), "--passage-tokens", "0"),
        "passages-overlap-too-large": index(
            str(notes), "--passage-tokens", "20", "--overlap", "30"
        ),
        "eval-missing-data": ["eval", "--data", str(tmp / "nodata"), *model],
        "bench-missing-index": ["bench", str(tmp / "missing"), "--queries", queries],
        "bench-missing-queries": ["bench", str(tmp / "idx"), "--queries", str(tmp / "no.txt")],
        "bench-n-zero": ["bench", str(tmp / "idx"), "--queries", queries, "-n", "0"],
        "bench-no-queries": ["bench", str(tmp / "idx"), "--queries", write("blank.txt", "\n\n")],
    }


def test_bad_cli_input_gets_one_line_errors(tmp_path, tiny_model_dir, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a URL taken for a path would land here, as "mysql:"
    model = model_args(tiny_model_dir)
    (tmp_path / "good.jsonl").write_text(
        '{"_id": "a", "text": "Bread needs yeast.", "year": 2020}\n'
    )
    assert main(["index", str(tmp_path / "good.jsonl"), str(tmp_path / "idx"), *model]) == 0
    capsys.readouterr()
    calls = bad_cli_calls(tmp_path, model)
    assert len(calls) >= 24  # docs/reliability.md quotes this count
    for name, argv in calls.items():
        assert main(argv) == 2, name  # 2: a colrank or usage error, not 1 (an unexpected one)
        err = capsys.readouterr().err.strip()
        assert err.startswith("colrank: error:") and "\n" not in err, (name, err)
    assert not (tmp_path / "mysql:").exists()  # a URL never becomes a folder
    assert not Path("s3:").exists()


def test_index_onto_an_index_needs_overwrite_or_append(tmp_path, tiny_model_dir, capsys) -> None:
    model = model_args(tiny_model_dir)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(f'{{"_id": "{i}", "text": "{t}"}}\n' for i, t, _ in CORPUS))
    second.write_text('{"_id": "new", "text": "Yeast makes bread rise."}\n')
    index_dir = str(tmp_path / "idx")
    assert main(["index", str(first), index_dir, *model]) == 0
    assert main(["index", str(second), index_dir, *model]) == 2  # refused, nothing changed
    assert "--overwrite" in capsys.readouterr().err
    from colrank import ColrankIndex

    def count() -> int:
        with ColrankIndex.load(index_dir, trust_models=True) as index:
            return len(index)

    assert count() == len(CORPUS)
    assert main(["index", str(second), index_dir, "--append", *model]) == 0
    assert "added 1 documents" in capsys.readouterr().out and count() == len(CORPUS) + 1
    assert main(["index", str(second), index_dir, "--overwrite", *model]) == 0
    assert count() == 1


def test_search_fusion_choices_are_the_configs(capsys) -> None:
    from typing import get_args

    from colrank.config import SearchConfig

    assert main(["search", "idx", "q", "--fusion", "nope"]) == 2
    err = capsys.readouterr().err
    assert all(
        f"'{name}'" in err
        for name in get_args(SearchConfig.model_fields["rerank_fusion"].annotation)
    )
    assert "'calibrated'" in err


def test_a_closed_pipe_ends_search_quietly(tmp_path, tiny_index, capsys, monkeypatch) -> None:
    tiny_index.save(tmp_path / "idx")

    class ClosedPipe:
        writes = 0

        def write(self, text: str) -> int:
            ClosedPipe.writes += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise ValueError("not a real file")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["search", str(tmp_path / "idx"), "bread", "--trust-models"]) == 0
    assert ClosedPipe.writes >= 1  # the table was being printed when the pipe closed
    assert capsys.readouterr().err == ""


def test_an_index_folder_below_a_file_is_a_usage_error(tmp_path, tiny_model_dir, capsys) -> None:
    corpus = tmp_path / "good.jsonl"
    corpus.write_text('{"_id": "a", "text": "Bread needs yeast."}\n')
    (tmp_path / "afile").write_text("a file, not a folder")
    argv = ["index", str(corpus), str(tmp_path / "afile" / "sub"), *model_args(tiny_model_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("colrank: error:") and "\n" not in err and "afile" in err
    assert "NotADirectoryError" not in err


def test_number_format_and_model_code_flags_reach_the_config(monkeypatch) -> None:
    from colrank.cli import build_parser
    from colrank.cli.common import flags_config

    monkeypatch.delenv("COLRANK_DTYPE", raising=False)
    parser = build_parser()
    plain = flags_config(parser.parse_args(["index", "corpus", "idx"]))
    assert (plain.runtime.dtype, plain.models.trust_remote_code) == ("auto", False)
    for command in ("index", "finetune"):
        where = ["corpus", "idx"] if command == "index" else ["--data", "d", "--out", "o"]
        args = parser.parse_args([command, *where, "--dtype", "float32", "--trust-remote-code"])
        cfg = flags_config(args)
        assert (cfg.runtime.dtype, cfg.models.trust_remote_code) == ("float32", True)
