"""A collection under real use: searches beside writes, and a writer process killed mid-batch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

from colrank import ColrankIndex

from .conftest import CORPUS, assert_stores_agree, run_concurrently


def _docs(version: int, n: int = 4) -> tuple[list[str], list[str], list[dict]]:
    ids = [f"v-{i}" for i in range(n)]
    texts = [f"Document {i} in version {version} of the batch." for i in range(n)]
    return ids, texts, [{"version": version, "slot": i} for i in range(n)]


def test_searches_beside_a_writer_never_fail_or_mix_documents(tiny_index: ColrankIndex) -> None:
    ids, texts, metas = _docs(0)
    tiny_index.add(texts, metas, ids)
    corpus_text = {i: t for i, t, _ in CORPUS}
    searches = [0]

    def reader(query: str):
        def search(_step: int) -> None:
            for hit in tiny_index.search(query, k=8, candidates=20):
                if hit.id.startswith("v-"):  # text, id and metadata of one document
                    version, slot = hit.metadata["version"], hit.metadata["slot"]
                    assert hit.id == f"v-{slot}"
                    assert hit.text == f"Document {slot} in version {version} of the batch."
                else:
                    assert hit.text == corpus_text[hit.id]
            searches[0] += 1

        return search

    writes = [0]

    def write(version: int) -> None:
        batch_ids, batch_texts, batch_metas = _docs(version)
        tiny_index.upsert(batch_texts, batch_metas, batch_ids)
        tiny_index.delete(["v-0"])
        text = f"Document 0 in version {version} of the batch."
        tiny_index.add([text], [{"version": version, "slot": 0}], ["v-0"])
        writes[0] = version

    queries = ["document version batch", "capital city", "energy cells", "version 3"]
    errors = run_concurrently(3.0, *(reader(q) for q in queries), write)
    assert not errors, errors[:3]
    assert searches[0] >= 4 and writes[0] >= 2  # both sides ran, the writer several rounds
    stored = tiny_index.get(["v-0"])[0]
    assert stored.text == f"Document 0 in version {writes[0]} of the batch."
    assert_stores_agree(tiny_index)


CHILD = textwrap.dedent(
    """
    import sys
    from colrank import ColrankConfig, ColrankIndex
    root, config = sys.argv[1], ColrankConfig.model_validate_json(sys.argv[2])
    index = ColrankIndex.load(root, config)
    version = int(index.get(["v-0"])[0].metadata["version"])
    while True:
        version += 1
        ids = [f"v-{i}" for i in range(4)]
        texts = [f"Document {i} in version {version} of the batch." for i in range(4)]
        metas = [{"version": version, "slot": i} for i in range(4)]
        index.upsert(texts, metas, ids)
        index.delete([f"x-{version - 1}"])
        index.add([f"Extra document of version {version}."], [{"version": version}], [f"x-{version}"])
        print("saving", version, flush=True)
        index.save(root)
        print("saved", version, flush=True)
    """
)


def test_a_writer_killed_mid_batch_leaves_the_state_before_or_after(
    tiny_index: ColrankIndex, tmp_path
) -> None:
    ids, texts, metas = _docs(0)
    tiny_index.add(texts, metas, ids)
    tiny_index.add(["Extra document of version 0."], [{"version": 0}], ["x-0"])
    root = tiny_index.save(tmp_path / "idx")
    rng = random.Random(7)
    config = tiny_index.config.model_dump_json()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), config],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        # kill inside a save ("saving N" seen) or inside the next batch ("saved N" seen)
        wanted, seen = rng.choice(["saving", "saved"]), 0
        target = rng.randint(1, 3)
        while seen < target:
            line = child.stdout.readline()
            assert line, "the writer process ended early"
            seen += line.startswith(wanted + " ")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        loaded = ColrankIndex.load(root, tiny_index.config)
        versions = {d.metadata["version"] for d in loaded.get([f"v-{i}" for i in range(4)])}
        assert len(versions) == 1, versions  # never a mix of two batches
        (version,) = versions
        extras = [i for i in loaded.ids() if i.startswith("x-")]
        assert extras == [f"x-{version}"]
        assert len(loaded) == len(CORPUS) + 5
        assert_stores_agree(loaded)


SAVER = textwrap.dedent(
    """
    import sys
    from colrank import ColrankConfig, ColrankIndex
    root, config, name = sys.argv[1], ColrankConfig.model_validate_json(sys.argv[2]), sys.argv[3]
    for round in range(8):
        index = ColrankIndex.load(root, config)
        index.upsert([f"Saved by {name} in round {round}."], ids=[f"by-{name}"])
        index.save(root)
    print("done", flush=True)
    """
)


def test_two_processes_saving_one_folder_while_a_third_loads(tiny_index, tmp_path) -> None:
    from colrank import CorruptIndexError

    root = tiny_index.save(tmp_path / "idx")
    config = tiny_index.config.model_dump_json()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    savers = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, str(root), config, name],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    loads, damaged = 0, []
    while any(s.poll() is None for s in savers):  # load while both save, until they finish
        try:
            loaded = ColrankIndex.load(root, tiny_index.config)
            assert len(loaded) >= len(CORPUS)
            loads += 1
        except CorruptIndexError as exc:  # a false "damaged" is what this test forbids
            damaged.append(exc)
    assert [s.stdout.read().strip() for s in savers] == ["done", "done"]
    assert not damaged and loads > 0
    final = ColrankIndex.load(root, tiny_index.config)
    assert {"by-a", "by-b"} & set(final.ids())  # the last save of each round is there
    snapshots = [p.name for p in root.glob("snapshot-*")]
    assert len(snapshots) <= 2  # the live one and the one before: no orphans pile up
