r"""Reading corpora: BEIR directories, JSONL files and folders of text files.

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id corpus-id score`` with a
header). A document's indexed text is ``title + "\n" + text`` when it has a title.

Example:
    >>> doc = {"_id": "1", "title": "T", "text": "body", "year": 2020}
    >>> beir_document(doc)
    ('1', 'T\nbody', {'title': 'T', 'year': 2020})
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colrank.errors import InvalidInputError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}


@dataclass
class BeirDataset:
    """A BEIR dataset split: corpus, queries with judgements, and the qrels."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def beir_document(row: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(id, text, metadata)`` from one BEIR corpus row (title and text must be strings)."""
    for key in ("title", "text"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise InvalidInputError(
                f"{key!r} must be a string, not {type(row[key]).__name__} ({row[key]!r:.40})"
            )
    doc_id = str(row.get("_id", row.get("id", "")))
    title = (row.get("title") or "").strip()
    body = (row.get("text") or "").strip()
    text = f"{title}\n{body}" if title and body else title or body
    meta = {k: v for k, v in row.items() if k not in {"_id", "id", "text"}}
    if not title:
        meta.pop("title", None)
    return doc_id, text, meta


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file (blank lines skipped); each must be a JSON object."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(
                    f"{where} is not UTF-8 (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); convert the file, e.g. iconv -f latin1 -t utf-8"
                ) from exc
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
                raise InvalidInputError(f"{where} is not valid JSON: {why}") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(
                    f"{where} is {type(row).__name__ if row is not None else 'null'}, "
                    'not a JSON object such as {"_id": "d1", "text": "..."}'
                )
            yield row


def read_corpus(
    path: str | Path, split: Callable[[str], list[str]] | None = None
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Ids, texts and metadata from a BEIR dir, a ``.jsonl`` file or a folder of text files.

    ``split`` cuts each file of a folder into passages (see
    :class:`~colrank.eval.passages.PassageSplitter`): passage ``i`` of ``a/b.md`` gets the
    id ``a/b.md#i`` and metadata ``{"source": "a/b.md", "passage": i}``.
    """
    path = Path(path)
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        path = path / "corpus.jsonl"
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    if path.is_file() and path.suffix in {".jsonl", ".json"}:
        skipped = 0
        for number, row in enumerate(iter_jsonl(path), start=1):
            try:
                doc_id, text, meta = beir_document(row)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}, document {number}: {exc}") from exc
            if not text:
                skipped += 1
                continue
            ids.append(doc_id or str(len(ids)))
            texts.append(text)
            metas.append(meta)
        if skipped:
            logger.warning("%s: %d documents without a title or text were skipped", path, skipped)
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES):
            text = file.read_text(encoding="utf-8", errors="replace").strip()
            if not text:
                continue
            rel = file.relative_to(path).as_posix()
            if split is None:
                ids.append(rel)
                texts.append(text)
                metas.append({"source": rel})
                continue
            for i, passage in enumerate(split(text)):
                ids.append(f"{rel}#{i}")
                texts.append(passage)
                metas.append({"source": rel, "passage": i})
    else:
        raise InvalidInputError(
            f"{path} is neither a BEIR directory, a .jsonl file nor a folder of "
            f"{'/'.join(sorted(TEXT_SUFFIXES))} files"
        )
    if not texts:
        raise InvalidInputError(f"no documents found in {path}")
    return ids, texts, metas


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a BEIR qrels TSV."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Load a BEIR dataset; keeps only queries that have judgements in ``split``."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise InvalidInputError(f"{needed} is missing; expected a BEIR dataset directory")
    ids, texts, metas = read_corpus(directory)
    qrels = read_qrels(qrels_path)
    queries = {
        str(row["_id"]): str(row["text"])
        for row in iter_jsonl(directory / "queries.jsonl")
        if str(row["_id"]) in qrels
    }
    qrels = {q: rels for q, rels in qrels.items() if q in queries}
    return BeirDataset(ids, texts, metas, queries, qrels)


__all__ = ["BeirDataset", "beir_document", "load_beir", "read_corpus", "read_qrels"]
