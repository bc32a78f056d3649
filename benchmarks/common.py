"""Shared helpers for the benchmark scripts: machine facts, results files, the SciFact index."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from colrank.eval.bench import percentiles  # noqa: F401 - re-exported for the scripts

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCIFACT = ROOT / ".." / "shared" / "data" / "scifact"
SCIFACT_INDEX = ROOT / "indexes" / "scifact-offline"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the command, machine and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {
        "name": name,
        "command": "python "
        + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(body, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def scifact_index(rebuild: bool = False):
    """The offline SciFact index (built and saved under indexes/ the first time)."""
    from colrank import ColrankConfig, ColrankIndex
    from colrank.eval.corpus import read_corpus

    if not (SCIFACT / "corpus.jsonl").is_file():
        sys.exit(f"SciFact not found at {SCIFACT}; these benchmarks need BEIR SciFact there.")
    if SCIFACT_INDEX.joinpath("CURRENT").is_file() and not rebuild:
        return ColrankIndex.load(SCIFACT_INDEX), None
    ids, texts, metas = read_corpus(SCIFACT)
    index = ColrankIndex(ColrankConfig.offline())
    start = time.perf_counter()
    index.add(texts, metas, ids)
    seconds = time.perf_counter() - start
    index.save(SCIFACT_INDEX)
    return index, seconds


def recoded_index(base: Path, codec: str):
    """The saved index at ``base``, or its copy recoded to ``codec`` (made and saved once).

    Recoding rounds the stored vectors again (float16 -> ``codec``): for ``bfloat16`` the
    rows equal what MaxSim multiplies when it widens float16 rows and rounds them to
    bfloat16, so scores match that path exactly.
    """
    from colrank import ColrankIndex

    index = ColrankIndex.load(base)
    if index.config.token_store.codec == codec:
        return index
    path = base.with_name(f"{base.name}-{codec}")
    if not path.joinpath("CURRENT").is_file():
        index.recode_tokens(codec, progress=False)
        index.save(path)
    return ColrankIndex.load(path)
