"""What the ``colrank`` commands share: settings from flags, building and opening indexes.

Example:
    >>> is_url("postgresql://localhost/rag"), is_url("my-index")
    (True, False)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from colrank.config import ColrankConfig, RuntimeConfig
from colrank.errors import InvalidInputError


def flags_config(args: argparse.Namespace) -> ColrankConfig:
    """Settings from the environment, then the command's model and device flags."""
    cfg = ColrankConfig.offline() if args.offline else ColrankConfig.from_env()
    models = cfg.models.model_copy()
    runtime = cfg.runtime.model_copy()
    if getattr(args, "dense_model", None):
        models.dense_model = args.dense_model
    if getattr(args, "colbert_model", None):
        models.colbert_model = args.colbert_model
    try:
        if getattr(args, "document_length", None) is not None:
            models.document_length = args.document_length
        if getattr(args, "device", None):
            runtime.device = args.device
        if getattr(args, "engine", None):
            runtime.engine = args.engine
        if getattr(args, "dtype", None):
            runtime.dtype = args.dtype
    except ValidationError as exc:  # validate_assignment: one line that names the flag
        first = exc.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise InvalidInputError(f"{flag}: {first['msg']}") from exc
    if getattr(args, "trust_remote_code", False):
        models.trust_remote_code = True
    if getattr(args, "quiet", False):
        runtime.show_progress = False
    update: dict[str, Any] = {"models": models, "runtime": runtime}
    if getattr(args, "index_kind", None):
        update["dense_index"] = cfg.dense_index.model_copy(update={"kind": args.index_kind})
    return cfg.model_copy(update=update)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model, device and progress flags every building command takes."""
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the bundled all-MiniLM-L6-v2 for both stages (no network); "
        "same as COLRANK_OFFLINE=1",
    )
    parser.add_argument("--dense-model", help="dense encoder: hub id, path or alias")
    parser.add_argument("--colbert-model", help="ColBERT model: hub id, path or alias")
    parser.add_argument("--document-length", type=int, help="ColBERT tokens kept per document")
    parser.add_argument("--device", help="auto, cpu, cuda[:N] or mps (default: auto)")
    parser.add_argument(
        "--engine",
        choices=get_args(RuntimeConfig.model_fields["engine"].annotation),
        help=(
            "what runs the transformers (default auto: on CPU, PyTorch bfloat16 where "
            "native, else ONNX Runtime when installed)"
        ),
    )
    parser.add_argument(
        "--dtype",
        choices=get_args(RuntimeConfig.model_fields["dtype"].annotation),
        help="the models' number format (default auto; float32 for exact CPU embeddings)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the code a model checkpoint ships (trusted models only, e.g. "
        "jinaai/jina-colbert-v2); same as COLRANK_TRUST_REMOTE_CODE=1",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_index(
    corpus: Path, cfg: ColrankConfig, chunk: int, passages: Any = None, into: Any = None
) -> Any:
    """Index a corpus in steps of ``chunk`` documents, with one progress bar for the whole.

    ``into``: an existing index to add the documents to (default: a new one).
    """
    from tqdm.auto import tqdm

    from colrank.eval.corpus import read_corpus
    from colrank.index import ColrankIndex

    if chunk < 1:
        raise InvalidInputError(f"--chunk must be at least 1, not {chunk}")
    index = ColrankIndex(cfg) if into is None else into
    if index.encoders.is_visual:
        return index_pages(corpus, index)
    ids, texts, metas = read_corpus(corpus, passages)
    show = cfg.runtime.show_progress
    with tqdm(total=len(texts), desc="Indexing", unit="doc", disable=not show) as bar:
        for start in range(0, len(texts), chunk):
            end = start + chunk
            index.add(texts[start:end], metas[start:end], ids[start:end], progress=False)
            bar.update(len(texts[start:end]))
    return index


def index_pages(corpus: Path, index: Any) -> Any:
    """Index a folder of PDFs and images (or one file) into a visual index, file by file."""
    from tqdm.auto import tqdm

    from colrank.pages import page_files

    files = page_files(corpus) if corpus.is_dir() else [corpus]
    if not files:
        raise InvalidInputError(f"no PDF or image files in {corpus}")
    show = index.config.runtime.show_progress
    with tqdm(total=len(files), desc="Indexing pages", unit="file", disable=not show) as bar:
        for path in files:
            index.add_files([path], on_conflict="replace", progress=False)
            bar.update(1)
    return index


def passage_splitter(args: argparse.Namespace, cfg: ColrankConfig) -> Any:
    """The passage splitter for a folder corpus (None: a BEIR/JSONL corpus, or --no-split)."""
    corpus = Path(args.corpus)
    if args.no_split or not corpus.is_dir() or (corpus / "corpus.jsonl").is_file():
        return None
    from colrank.models.visual import is_visual_model

    if is_visual_model(cfg.models.colbert_model):
        return None  # pages are indexed whole
    from colrank.eval.passages import PassageSplitter
    from colrank.models.loading import resolve_model_path

    path = resolve_model_path(cfg.models.colbert_model)
    return PassageSplitter.for_model(path, args.passage_tokens, args.overlap)


def add_trust_arg(parser: argparse.ArgumentParser) -> None:
    """``--trust-models``: load the local model folders an existing index names."""
    parser.add_argument(
        "--trust-models",
        action="store_true",
        help="load the local model folders the index names (only for indexes you made: "
        "a model folder can ship code); hub ids and offline:minilm need no trust",
    )


def load_or_build(args: argparse.Namespace) -> Any:
    """The index at ``--index`` when saved there; else built over ``--data`` (and saved)."""
    from colrank.index import ColrankIndex

    index_dir = Path(args.index) if args.index else None
    if index_dir is not None and (index_dir / "CURRENT").is_file():
        return ColrankIndex.load(index_dir, trust_models=getattr(args, "trust_models", False))
    index = build_index(Path(args.data), flags_config(args), getattr(args, "chunk", 2048))
    if index_dir is not None:
        index.save(index_dir)
    return index


def is_url(target: str) -> bool:
    """Whether ``target`` names a database rather than an index folder (other URLs refused)."""
    from colrank.opening import check_folder, is_database_url

    if is_database_url(target):
        return True
    check_folder(target)  # mysql://..., s3://...: an error, never a folder named "mysql:"
    return False


def open_target(target: str, args: argparse.Namespace, config: ColrankConfig | None = None) -> Any:
    """A saved index folder, or a collection in a database (``--collection``)."""
    from colrank.index import ColrankIndex

    if is_url(target):
        return ColrankIndex.open(
            target, args.collection, config, trust_models=getattr(args, "trust_models", False)
        )
    return ColrankIndex.load(
        target,
        verify=not getattr(args, "no_verify", False),
        trust_models=getattr(args, "trust_models", False),
    )


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """Rows as a plain left-aligned text table under a header and a rule."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    body = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])
