"""Snapshot cleanup removes only what colrank made, and a killed save leaves nothing for good.

A "kill" here is simulated at one file-system step of a save: the step runs, then every
later step of that save fails too (no cleanup handler of a killed process runs). Synthetic
embeddings, no model: each save takes milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from colrank.store.base import DocumentRows, WriteBatch
from colrank.store.local.backend import LocalBackend
from colrank.store.local.snapshots import CURRENT_FILE

_STEPS = ("mkdir", "rmdir", "unlink", "rename", "replace", "fsync")
_BOOKKEEPING = {CURRENT_FILE, ".colrank-save.lock"}


class Killed(BaseException):
    """The process died at this step (not an error a handler may catch)."""


def backend(n: int = 3) -> LocalBackend:
    store = LocalBackend(codec="float32")
    ids = [f"d{i}" for i in range(n)]
    vectors = np.eye(n, 4, dtype=np.float32)
    tokens = [np.ones((2, 3), np.float32) * (i + 1) for i in range(n)]
    store.write(WriteBatch(upserts=DocumentRows(ids, ids, [{}] * n, vectors, tokens)))
    return store


def folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in _BOOKKEEPING)


def test_a_save_never_deletes_a_user_file_beside_the_index(tmp_path) -> None:
    store, root = backend(), tmp_path / "idx"
    store.save(root, {})
    notes = root / ".CURRENT.notes.tmp"  # looks like colrank's temporary pointer; is not
    notes.write_text("my notes")
    for _ in range(3):
        store.save(root, {})
    assert notes.read_text() == "my notes"


def kill_at(monkeypatch: pytest.MonkeyPatch, step: int) -> list[int]:
    """Let file-system steps run until the ``step``-th, which runs and then kills the save."""
    seen = [0]
    for name in _STEPS:
        real = getattr(os, name)

        def patched(*args, _real=real, **kwargs):
            seen[0] += 1
            if seen[0] > step:
                raise Killed(f"killed before step {seen[0]}")
            out = _real(*args, **kwargs)
            if seen[0] == step:
                raise Killed(f"killed after step {step}")
            return out

        monkeypatch.setattr(os, name, patched)
    return seen


def test_a_save_killed_at_any_step_leaves_nothing_the_next_save_does_not_remove(
    tmp_path, monkeypatch
) -> None:
    store = backend()
    kills = 0
    for step in range(1, 400):
        root = tmp_path / f"idx-{step}"
        store.save(root, {})
        store.save(root, {})  # a live snapshot and a previous one, as in daily use
        with monkeypatch.context() as patch:
            kill_at(patch, step)
            try:
                store.save(root, {})
            except Killed:
                kills += 1
            else:
                break  # the save ran to its end before this step: every step was tried
        LocalBackend.load(root)  # the index survives the kill
        store.save(root, {})  # the next (unkilled) save cleans up
        left = folders(root)
        assert len(left) == 2 and all(name.startswith("snapshot-") for name in left), (step, left)
        assert LocalBackend.load(root)[0].stats()["documents"] == 3
    assert kills >= 10  # the steps of a save: folders made, renamed, removed, files synced
