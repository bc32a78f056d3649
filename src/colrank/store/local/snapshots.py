"""Atomic, checksummed snapshots of an index directory.

An index directory holds snapshot folders and a ``CURRENT`` file naming the live one.
Saving writes a new snapshot (files, then ``manifest.json`` with sizes and SHA-256
checksums), fsyncs every file in it, and only then replaces ``CURRENT`` with an atomic
rename. A crash at any point leaves ``CURRENT`` naming the previous complete snapshot,
so a save can never lose the index that was there before. The previous snapshot is
kept after publishing (a reader that has just read ``CURRENT`` may still be opening
it); older ones are removed, and only folders that colrank made (its name pattern and
its marker file). Processes that save into one folder take turns: each save holds an
exclusive OS lock on ``.colrank-save.lock`` (``flock``; where the OS has none, as on
Windows, one saver at a time is the user's to ensure).

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with write_snapshot(root) as snap:
    ...     _ = (snap / "a.txt").write_text("hi")
    ...     commit_manifest(snap, {"format_version": 1}, ["a.txt"])
    >>> read_manifest(current_snapshot(root))["format_version"]
    1
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from colrank.errors import CorruptIndexError, IndexNotFoundError

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
_SNAPSHOT_PREFIX = "snapshot-"
# Only names of this exact shape are ever removed (a user's "snapshot-photos/" is not ours).
_SNAPSHOT_NAME = re.compile(r"snapshot-\d{8}T\d{6}-[0-9a-f]{8}")
MARKER_FILE = ".colrank-snapshot"  # written first into every snapshot colrank makes
LOCK_FILE = ".colrank-save.lock"


@contextlib.contextmanager
def _save_lock(root: Path) -> Iterator[None]:
    """One saving process at a time per index folder (others wait)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (root / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ours(folder: Path) -> bool:
    """A snapshot folder colrank made: its name pattern and its marker (or a manifest)."""
    return (
        _SNAPSHOT_NAME.fullmatch(folder.name) is not None
        and folder.is_dir()
        and not folder.is_symlink()
        and ((folder / MARKER_FILE).is_file() or (folder / MANIFEST_FILE).is_file())
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    """Flush a file or a directory entry to disk; a failure is an error (data at risk)."""
    is_dir = path.is_dir()
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if is_dir else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        if is_dir and os.name == "nt":  # Windows cannot open directories; NTFS journals them
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Fsync every file below ``folder``, then each directory (deepest first)."""
    for current, dirs, files in os.walk(folder, topdown=False):
        base = Path(current)
        for name in files:
            _fsync_path(base / name)
        for name in dirs:
            _fsync_path(base / name)
    _fsync_path(folder)


@contextlib.contextmanager
def write_snapshot(root: Path) -> Iterator[Path]:
    """Yield a fresh snapshot folder under ``root``; publish it if the block succeeds.

    The block must call :func:`commit_manifest`. On any exception the partial
    snapshot is removed and ``CURRENT`` is left untouched.
    """
    root.mkdir(parents=True, exist_ok=True)
    with _save_lock(root):
        yield from _write_locked(root)


def _write_locked(root: Path) -> Iterator[Path]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    snapshot = root / f"{_SNAPSHOT_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    snapshot.mkdir()
    (snapshot / MARKER_FILE).write_text("colrank\n")
    try:
        yield snapshot
        if not (snapshot / MANIFEST_FILE).is_file():
            raise RuntimeError("snapshot written without a manifest")
        previous = _current_name(root)
        _fsync_tree(snapshot)
        pointer = root / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}.tmp"
        pointer.write_text(snapshot.name + "\n")
        _fsync_path(pointer)
        os.replace(pointer, root / CURRENT_FILE)
        _fsync_path(root)
    except BaseException:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise
    keep = {snapshot.name, previous}
    for old in root.iterdir():  # under the lock: no other save is writing one of these
        if old.name not in keep and _ours(old):
            shutil.rmtree(old, ignore_errors=True)
        elif old.name.startswith(f".{CURRENT_FILE}.") and old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)


def _current_name(root: Path) -> str | None:
    try:
        return (root / CURRENT_FILE).read_text().strip() or None
    except OSError:
        return None


def commit_manifest(snapshot: Path, manifest: dict[str, Any], files: Sequence[str]) -> None:
    """Write ``manifest.json`` with each file's size and checksum."""
    entries = {}
    for name in files:
        path = snapshot / name
        entries[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    body = {**manifest, "files": entries}
    (snapshot / MANIFEST_FILE).write_text(json.dumps(body, indent=2, sort_keys=True))


def current_snapshot(root: Path) -> Path:
    """The live snapshot folder of an index directory."""
    pointer = root / CURRENT_FILE
    if not root.exists():
        raise IndexNotFoundError(f"no index at {root}: the directory does not exist")
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"{root} is not a colrank index (no {CURRENT_FILE} file); build one with "
            "ColrankIndex.save() or `colrank index`."
        )
    name = pointer.read_text(encoding="utf-8", errors="replace").strip()
    if not _SNAPSHOT_NAME.fullmatch(name):  # a sibling folder colrank named, nothing else
        raise CorruptIndexError(f"{pointer} does not name a colrank snapshot; the index is damaged")
    snapshot = root / name
    if snapshot.is_symlink() or not snapshot.is_dir():
        raise CorruptIndexError(
            f"{pointer} names a missing snapshot {name!r}; the index is damaged"
        )
    return snapshot


def read_manifest(snapshot: Path) -> dict[str, Any]:
    """Parse a snapshot's manifest."""
    try:
        return json.loads((snapshot / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(f"manifest of {snapshot} is missing or unreadable: {exc}") from exc


def _inside(snapshot: Path, name: Any) -> Path:
    """The file a manifest names, refused unless it is a plain file inside the snapshot."""
    parts = Path(name).parts if isinstance(name, str) else ()
    if not parts or Path(name).is_absolute() or any(p in ("..", "") for p in parts):
        raise CorruptIndexError(f"the manifest of {snapshot.name} names a file outside it")
    path = snapshot.joinpath(*parts)
    here = snapshot
    for part in parts:  # no link anywhere on the way: nothing outside is read
        here = here / part
        if here.is_symlink():
            raise CorruptIndexError(f"index file {name} is a symbolic link; refused")
    return path


def verify_files(snapshot: Path, manifest: dict[str, Any], *, checksums: bool = True) -> None:
    """Check every file the manifest lists: present, right size, and (optionally) checksum.

    A listed name must be a plain file inside the snapshot (no ``..``, no absolute path,
    no symbolic link): a hostile manifest cannot make a load read or measure other files.
    """
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise CorruptIndexError(f"the manifest of {snapshot.name} is malformed")
    for name, entry in files.items():
        path = _inside(snapshot, name)
        if not path.is_file():
            raise CorruptIndexError(f"index file {name} is missing from {snapshot}")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise CorruptIndexError(
                f"index file {name} has {size} bytes, the manifest says {entry['bytes']}: "
                "the index is truncated or was modified; rebuild it or restore a backup."
            )
        if checksums and sha256_file(path) != entry["sha256"]:
            raise CorruptIndexError(
                f"index file {name} fails its checksum: the index is corrupted; "
                "rebuild it or restore a backup."
            )


__all__ = [
    "commit_manifest",
    "current_snapshot",
    "read_manifest",
    "sha256_file",
    "verify_files",
    "write_snapshot",
]
