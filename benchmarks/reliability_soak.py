"""Soak runs behind docs/reliability.md: longer than the tests, counts instead of timings.

1. Threads: 4 readers search one index for ``--seconds`` while a writer upserts a
   versioned batch, deletes and re-adds a document, and replaces the oldest document,
   over and over. Counts searches, hits checked (each hit's text must be the text of
   its id in some version) and exceptions.
2. Processes: two worker processes share one saved folder for ``--rounds`` rounds; in
   each round both start together (a barrier), worker A saves, worker B saves on even
   rounds and loads on odd ones. After each round the parent loads the folder. Counts
   saves, loads, unloadable states and false "damaged" errors.

Uses the bundled offline MiniLM (no download).

    python benchmarks/reliability_soak.py --seconds 30 --rounds 50
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_result

from colrank import ColrankConfig, ColrankIndex, CorruptIndexError

BASE = [f"Background document {i} about topic {i % 7} and its details." for i in range(40)]


def config() -> ColrankConfig:
    cfg = ColrankConfig.offline()
    return cfg.model_copy(
        update={"runtime": cfg.runtime.model_copy(update={"device": "cpu", "show_progress": False})}
    )


def versioned(slot: int, version: int) -> str:
    return f"Document {slot} in version {version} of the batch."


def threads_run(seconds: float) -> dict[str, int]:
    index = ColrankIndex(config())
    index.add(BASE, [{"base": True}] * len(BASE), [f"b-{i}" for i in range(len(BASE))])
    index.add(
        [versioned(i, 0) for i in range(4)], [{"version": 0}] * 4, [f"v-{i}" for i in range(4)]
    )
    base_text = {f"b-{i}": t for i, t in enumerate(BASE)}
    counts = {"searches": 0, "hits_checked": 0, "writes": 0, "exceptions": 0, "mismatches": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    errors: list[str] = []

    def check(hit) -> bool:
        if hit.id.startswith("v-"):
            return hit.text == versioned(int(hit.id[2:]), int(hit.metadata["version"]))
        if hit.id.startswith("r-"):
            return hit.text == f"Rolling document number {hit.id[2:]}."
        return hit.text == base_text[hit.id]

    def reader(query: str) -> None:
        while time.monotonic() < stop:
            try:
                hits = index.search(query, k=10, candidates=30)
                bad = sum(not check(h) for h in hits)
                with lock:
                    counts["searches"] += 1
                    counts["hits_checked"] += len(hits)
                    counts["mismatches"] += bad
            except Exception:  # counted, and the first few kept for the report
                with lock:
                    counts["exceptions"] += 1
                    errors.append(traceback.format_exc(limit=3))

    def writer() -> None:
        version, rolling = 0, []
        while time.monotonic() < stop:
            try:
                version += 1
                ids = [f"v-{i}" for i in range(4)]
                index.upsert(
                    [versioned(i, version) for i in range(4)], [{"version": version}] * 4, ids
                )
                index.delete(["v-0"])
                index.add([versioned(0, version)], [{"version": version}], ["v-0"])
                new = f"r-{version}"  # replace the oldest rolling document
                index.add([f"Rolling document number {version}."], [{"rolling": True}], [new])
                rolling.append(new)
                if len(rolling) > 5:
                    index.delete([rolling.pop(0)])
                with lock:
                    counts["writes"] += 1
            except Exception:
                with lock:
                    counts["exceptions"] += 1
                    errors.append(traceback.format_exc(limit=3))

    queries = ["document version batch", "topic details", "rolling document", "version 3"]
    workers = [threading.Thread(target=reader, args=(q,)) for q in queries]
    workers.append(threading.Thread(target=writer))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for e in errors[:3]:
        print(e, file=sys.stderr)
    return counts


def worker(name: str, root: str, rounds: int, barrier, results) -> None:
    index = ColrankIndex.load(root, config())
    counts = {"saves": 0, "loads": 0, "damaged": 0, "other_errors": 0}
    for r in range(rounds):
        barrier.wait()
        try:
            if name == "a" or r % 2 == 0:
                index.upsert([f"Saved by {name} in round {r}."], ids=[f"by-{name}"])
                index.save(root)
                counts["saves"] += 1
            else:
                ColrankIndex.load(root, config())
                counts["loads"] += 1
        except CorruptIndexError:
            counts["damaged"] += 1
        except Exception:
            counts["other_errors"] += 1
            traceback.print_exc()
        barrier.wait()  # the parent checks the folder between rounds
        barrier.wait()
    results[name] = counts


def processes_run(rounds: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        root = str(Path(tmp) / "idx")
        index = ColrankIndex(config())
        index.add(BASE, ids=[f"b-{i}" for i in range(len(BASE))])
        index.save(root)
        ctx = mp.get_context("spawn")
        barrier, results = ctx.Barrier(3), ctx.Manager().dict()
        procs = [ctx.Process(target=worker, args=(n, root, rounds, barrier, results)) for n in "ab"]
        for p in procs:
            p.start()
        unloadable, snapshots_max = 0, 0
        for _ in range(rounds):
            barrier.wait()  # the round starts
            barrier.wait()  # both workers are done with it
            try:
                loaded = ColrankIndex.load(root, config())
                assert len(loaded) >= len(BASE)
            except Exception:
                unloadable += 1
                traceback.print_exc()
            snapshots_max = max(snapshots_max, len(list(Path(root).glob("snapshot-*"))))
            barrier.wait()
        for p in procs:
            p.join()
        a, b = dict(results["a"]), dict(results["b"])
    return {
        "rounds": rounds,
        "save_save_rounds": (rounds + 1) // 2,
        "save_load_rounds": rounds // 2,
        "saves": a["saves"] + b["saves"],
        "worker_loads": b["loads"],
        "parent_loads": rounds,
        "unloadable_states": unloadable,
        "false_damaged_errors": a["damaged"] + b["damaged"],
        "other_errors": a["other_errors"] + b["other_errors"],
        "most_snapshot_folders_seen": snapshots_max,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="threads run length")
    parser.add_argument("--rounds", type=int, default=50, help="two-process rounds")
    args = parser.parse_args()
    started = time.perf_counter()
    threads = threads_run(args.seconds)
    print("threads:", threads)
    processes = processes_run(args.rounds)
    print("processes:", processes)
    write_result(
        "reliability_soak",
        {
            "threads": {"seconds": args.seconds, "readers": 4, "writers": 1, **threads},
            "processes": processes,
            "wall_seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
