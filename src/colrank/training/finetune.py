"""Fine-tune a ColBERT on your own question -> passage pairs, offline, with PyLate.

Steps: split the labelled queries into train and dev (by query, seeded); mine hard
negatives for every (query, positive) pair with a colrank index (dense recall, known
positives skipped); train a PyLate ColBERT with its contrastive loss (in-batch plus the
mined negatives); evaluate on the dev slice every ``eval_steps``, keep the best
checkpoint by dev loss, stop early when it stops improving; save a model the engine
loads by path (``ColrankConfig(models={"colbert_model": out_dir})``).

Example:
    >>> from colrank.eval.corpus import load_beir                                   # doctest: +SKIP
    >>> result = finetune("offline:minilm", load_beir("scifact", "train"), "my-colbert",
    ...                   index=ColrankIndex.load("scifact-index"))            # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from colrank.config import ColrankConfig, RuntimeConfig
from colrank.errors import InvalidInputError
from colrank.eval.corpus import BeirDataset
from colrank.index import ColrankIndex
from colrank.models.device import resolve_device
from colrank.models.loading import (
    colbert_from_sentence_transformer,
    encoder_max_length,
    is_plain_sentence_transformer,
    resolve_model_path,
)

logger = logging.getLogger(__name__)


class FinetuneConfig(BaseModel):
    """Training settings; the defaults fit a 2-core CPU in about half an hour on SciFact."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="Stop after this many steps (-1: use epochs).")
    batch_size: int = Field(16, gt=1, description="Queries per step (in-batch negatives).")
    learning_rate: float = Field(3e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    negatives_per_pair: int = Field(2, gt=0, description="Mined hard negatives per positive.")
    mining_depth: int = Field(30, gt=0, description="Dense ranks searched for negatives.")
    document_length: int = Field(180, gt=8, description="Document tokens during training.")
    dev_fraction: float = Field(0.1, gt=0, lt=1, description="Queries held out for evaluation.")
    eval_steps: int = Field(25, gt=0)
    early_stopping_patience: int = Field(3, gt=0)
    corpus_pairs: int = Field(
        0,
        ge=0,
        description="Extra unsupervised (title -> body) pairs sampled from the corpus, for "
        "when few labelled queries exist (0: none). Needs documents with a 'title' metadata.",
    )
    seed: int = 0


@dataclass
class FinetuneResult:
    """What a fine-tuning run produced."""

    model_dir: str
    train_triplets: int
    dev_triplets: int
    corpus_triplets: int
    steps: int
    seconds: float
    train_loss_before: float
    train_loss_after: float
    dev_loss_before: float
    dev_loss_after: float
    dev_accuracy_after: float | None


def _hard_negatives(
    index: ColrankIndex, query: str, exclude: set[str], depth: int
) -> list[tuple[str, str]]:
    """``(id, text)`` of the dense top ``depth`` for ``query``, without the ``exclude`` ids."""
    return [(h.id, h.text) for h in index.dense_search(query, k=depth) if h.id not in exclude]


def mine_triplets(
    index: ColrankIndex,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    negatives_per_pair: int,
    depth: int,
    seed: int = 0,
) -> list[dict[str, str]]:
    """``{"query", "positive", "negative"}`` rows; negatives come from the dense top ``depth``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    rows = []
    for qid, query in queries.items():
        positives = [d for d, rel in qrels.get(qid, {}).items() if rel > 0 and d in index]
        if not positives:
            continue
        pool = [text for _, text in _hard_negatives(index, query, {*positives, qid}, depth)]
        if not pool:
            continue
        for doc in index.get(positives):
            for negative in rng.sample(pool, min(negatives_per_pair, len(pool))):
                rows.append({"query": query, "positive": doc.text, "negative": negative})
    return rows


def split_title(text: str, metadata: dict[str, Any]) -> tuple[str, str]:
    r"""``(title, body)`` of an indexed text; ``("", text)`` when it has no separate title.

    Example:
        >>> split_title("Yeast\nDough rises.", {"title": "Yeast"})
        ('Yeast', 'Dough rises.')
    """
    title = str(metadata.get("title") or "").strip()
    if title and text.startswith(title + "\n"):
        body = text[len(title) + 1 :].strip()
        if body:
            return title, body
    return "", text


def corpus_triplets(
    index: ColrankIndex,
    limit: int,
    negatives_per_pair: int,
    depth: int,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Unsupervised rows from the index's own documents: title as query, body as positive.

    Up to ``limit`` titled documents are sampled; negatives are the bodies of the other
    documents the dense index ranks highest for the title (titles stripped from both
    sides, so the title words are never a give-away).
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    order = index.ids()
    rng.shuffle(order)
    picked: list[tuple[str, str, str]] = []
    for start in range(0, len(order), 1024):  # read in chunks: corpora can be large
        for doc in index.get(order[start : start + 1024]):
            title, body = split_title(doc.text, doc.metadata)
            if title and doc.id is not None:
                picked.append((doc.id, title, body))
        if len(picked) >= limit:
            break
    rows = []
    for doc_id, title, body in picked[:limit]:
        hits = _hard_negatives(index, title, {doc_id}, depth)
        pool = [split_title(d.text, d.metadata)[1] for d in index.get([i for i, _ in hits])]
        for negative in rng.sample(pool, min(negatives_per_pair, len(pool))):
            rows.append({"query": title, "positive": body, "negative": negative})
    return rows


def _split(queries: dict[str, str], fraction: float, seed: int) -> tuple[dict, dict]:
    ids = sorted(queries)
    random.Random(seed).shuffle(ids)  # noqa: S311 - reproducible split
    n_dev = max(1, round(len(ids) * fraction))
    dev = set(ids[:n_dev])
    return (
        {q: t for q, t in queries.items() if q not in dev},
        {q: t for q, t in queries.items() if q in dev},
    )


def _load_trainable(base: str, device: str, trust_remote_code: bool = False) -> Any:
    """A fresh (uncached, trainable) ColBERT with the model's own document length."""
    from pylate.models import ColBERT

    path = resolve_model_path(base)
    if is_plain_sentence_transformer(path):
        return colbert_from_sentence_transformer(
            path,
            device=device,
            document_length=encoder_max_length(path),
            trust_remote_code=trust_remote_code,
        )
    return ColBERT(path, device=device, trust_remote_code=trust_remote_code)


def finetune(
    base: str,
    data: BeirDataset,
    out_dir: str | Path,
    *,
    index: ColrankIndex | None = None,
    config: FinetuneConfig | None = None,
    runtime: RuntimeConfig | None = None,
    trust_remote_code: bool = False,
) -> FinetuneResult:
    """Train a ColBERT from ``base`` on ``data``'s labelled queries; save it to ``out_dir``.

    Args:
        base: ColBERT checkpoint or sentence-transformers model (hub id, path, alias).
        data: corpus, queries and qrels of the *training* split only.
        out_dir: where the trained model is saved.
        index: a colrank index over ``data``'s corpus for mining negatives (built with
            the offline models when None; that encodes the corpus once).
        config: training settings.
        runtime: device and progress settings.
        trust_remote_code: run the model code ``base`` ships (trusted checkpoints only,
            e.g. ``jinaai/jina-colbert-v2``).
    """
    from datasets import Dataset
    from pylate import evaluation, losses, utils
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import EarlyStoppingCallback

    config = config or FinetuneConfig()
    runtime = runtime or RuntimeConfig()
    if not data.qrels:
        raise InvalidInputError("no labelled queries: fine-tuning needs qrels")
    out = Path(out_dir)
    if index is None:
        index = ColrankIndex(ColrankConfig.offline(runtime=runtime))
        index.add(data.texts, data.metadatas, data.ids)
    train_q, dev_q = _split(data.queries, config.dev_fraction, config.seed)
    train_rows = mine_triplets(
        index, train_q, data.qrels, config.negatives_per_pair, config.mining_depth, config.seed
    )
    dev_rows = mine_triplets(index, dev_q, data.qrels, 1, config.mining_depth, config.seed)
    extra_rows = (
        corpus_triplets(
            index, config.corpus_pairs, config.negatives_per_pair, config.mining_depth, config.seed
        )
        if config.corpus_pairs
        else []
    )
    if config.corpus_pairs and not extra_rows:
        logger.warning("corpus_pairs=%d but no document has a title", config.corpus_pairs)
    train_rows += extra_rows
    if len(train_rows) < config.batch_size or not dev_rows:
        raise InvalidInputError(
            f"too few training triplets ({len(train_rows)} train, {len(dev_rows)} dev); "
            "add labelled queries or lower batch_size / dev_fraction"
        )
    logger.info(
        "mined %d training (%d from corpus titles) and %d dev triplets",
        len(train_rows),
        len(extra_rows),
        len(dev_rows),
    )

    device = resolve_device(runtime.device)
    total_steps = (
        config.max_steps
        if config.max_steps > 0
        else math.ceil(len(train_rows) / config.batch_size * config.epochs)
    )
    model = _load_trainable(base, device, trust_remote_code)
    # PyLate reads document_length at each tokenization: train on shorter documents for
    # speed, and restore the model's own length before saving.
    inference_length = model.document_length
    model.document_length = config.document_length
    train_ds, dev_ds = Dataset.from_list(train_rows), Dataset.from_list(dev_rows)
    loss = losses.Contrastive(model=model)
    evaluator = evaluation.ColBERTTripletEvaluator(
        anchors=[r["query"] for r in dev_rows],
        positives=[r["positive"] for r in dev_rows],
        negatives=[r["negative"] for r in dev_rows],
        name="dev",
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=int(config.warmup_ratio * total_steps),
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, config.eval_steps // 5),
        use_cpu=device == "cpu",
        report_to="none",
        seed=config.seed,
        disable_tqdm=not runtime.show_progress,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        loss=loss,
        evaluator=evaluator,
        data_collator=utils.ColBERTCollator(model.tokenize),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)],
    )
    probe = train_ds.select(range(min(256, len(train_ds))))  # fixed sample of training rows
    started = time.perf_counter()
    before = trainer.evaluate()["eval_loss"]
    train_before = trainer.evaluate(eval_dataset=probe, metric_key_prefix="train")["train_loss"]
    trainer.train()
    after = trainer.evaluate()
    train_after = trainer.evaluate(eval_dataset=probe, metric_key_prefix="train")["train_loss"]
    logger.info("final evaluation: %s", after)
    seconds = time.perf_counter() - started
    # Documents were truncated for speed while training; at inference use the full length.
    model.document_length = inference_length
    model.save(str(out))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    result = FinetuneResult(
        model_dir=str(out),
        train_triplets=len(train_rows),
        dev_triplets=len(dev_rows),
        corpus_triplets=len(extra_rows),
        steps=int(trainer.state.global_step),
        seconds=seconds,
        train_loss_before=float(train_before),
        train_loss_after=float(train_after),
        dev_loss_before=float(before),
        dev_loss_after=float(after["eval_loss"]),
        dev_accuracy_after=next(
            (float(v) for k, v in after.items() if k.endswith("accuracy")), None
        ),
    )
    summary = {**asdict(result), "base": base, "config": config.model_dump()}
    (out / "colrank_finetune.json").write_text(json.dumps(summary, indent=2))
    return result


__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "corpus_triplets",
    "finetune",
    "mine_triplets",
    "split_title",
]
