"""Atomic, checksummed snapshots of an index directory.

An index directory holds snapshot folders and a ``CURRENT`` file naming the live one.
Saving writes a new snapshot (files, then ``manifest.json`` with sizes and SHA-256
checksums), fsyncs every file in it, and only then replaces ``CURRENT`` with an atomic
rename. A crash at any point leaves ``CURRENT`` naming the previous complete snapshot,
so a save can never lose the index that was there before. The previous snapshot is
kept after publishing (a reader that has just read ``CURRENT`` may still be opening
it); older ones are removed. Processes that save into one folder take turns: each save
holds an exclusive OS lock on ``.colrank-save.lock`` (``flock``; where the OS has none,
as on Windows, one saver at a time is the user's to ensure).

Cleanup removes only what colrank made, and a save killed at any step leaves nothing
that the next save does not remove. A snapshot is written under a staging name
(``.colrank-staging.snapshot-...``) and takes its own name only once complete; the new
``CURRENT`` is written inside it, then renamed over the old one. A snapshot to remove is
first renamed to ``.colrank-trash.snapshot-...``, then deleted. So a killed save can
only leave a staging or trash folder (names no one else uses) or a complete snapshot
with its marker; the next save removes those, and nothing else (a user's
``.CURRENT.notes.tmp`` or ``snapshot-photos/`` stays).

Reading goes through :mod:`colrank.store.local.files`: no symbolic link is followed, no
FIFO or device is read, and every size is checked before reading.

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

from colrank.errors import CorruptIndexError, IndexNotFoundError, InvalidInputError
from colrank.store.local.files import file_size, read_bytes, read_json, sha256

CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
_SNAPSHOT_PREFIX = "snapshot-"
# Only names of this exact shape are ever removed (a user's "snapshot-photos/" is not ours).
_SNAPSHOT_NAME = re.compile(r"snapshot-\d{8}T\d{6}-[0-9a-f]{8}")
MARKER_FILE = ".colrank-snapshot"  # written first into every snapshot colrank makes
LOCK_FILE = ".colrank-save.lock"
_STAGING = ".colrank-staging."  # + a snapshot name: being written
_TRASH = ".colrank-trash."  # + a snapshot name: being removed
_LEFTOVER = re.compile(r"\.colrank-(staging|trash)\.snapshot-\d{8}T\d{6}-[0-9a-f]{8}")
_POINTER = ".colrank-CURRENT.tmp"  # the next CURRENT, written inside the new snapshot
_POINTER_BYTES = 4096


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
    """What colrank made: a staging or trash folder, or a snapshot with its marker."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if _LEFTOVER.fullmatch(folder.name):
        return True
    return _SNAPSHOT_NAME.fullmatch(folder.name) is not None and (
        (folder / MARKER_FILE).is_file() or (folder / MANIFEST_FILE).is_file()
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


def check_index_folder(root: Path) -> None:
    """Refuse a path that cannot become an index folder (it, or a folder above it, is a file).

    Raises:
        InvalidInputError: naming the file in the way.
    """
    for path in (root, *root.parents):
        if path.exists():
            if not path.is_dir():
                raise InvalidInputError(
                    f"cannot save an index in {root}: {path} is a file, not a folder"
                )
            return


@contextlib.contextmanager
def write_snapshot(root: Path) -> Iterator[Path]:
    """Yield a fresh (staging) snapshot folder under ``root``; publish it if the block succeeds.

    The block must call :func:`commit_manifest`. On any exception the partial
    snapshot is removed and ``CURRENT`` is left untouched.
    """
    check_index_folder(root)
    root.mkdir(parents=True, exist_ok=True)
    with _save_lock(root):
        yield from _write_locked(root)


def _write_locked(root: Path) -> Iterator[Path]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"{_SNAPSHOT_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
    staging, snapshot = root / f"{_STAGING}{name}", root / name
    staging.mkdir()
    published = False
    try:
        (staging / MARKER_FILE).write_text("colrank\n")
        yield staging
        if not (staging / MANIFEST_FILE).is_file():
            raise RuntimeError("snapshot written without a manifest")
        previous = _current_name(root)
        _fsync_tree(staging)
        os.rename(staging, snapshot)
        _fsync_path(root)
        pointer = snapshot / _POINTER
        pointer.write_text(name + "\n")
        _fsync_path(pointer)
        os.replace(pointer, root / CURRENT_FILE)
        published = True
        _fsync_path(root)
    except BaseException:
        if not published:
            for folder in (staging, snapshot):
                if folder.is_dir():
                    _discard(root, folder)
        raise
    for entry in root.iterdir():  # under the lock: no other save is writing one of these
        if entry.name not in (name, previous) and _ours(entry):
            _discard(root, entry)


def _discard(root: Path, folder: Path) -> None:
    """Remove a folder colrank made, renaming it to a trash name first.

    A save killed while deleting then leaves a trash folder, which the next save removes.
    """
    base = folder.name.removeprefix(_STAGING).removeprefix(_TRASH)
    trash = root / f"{_TRASH}{base}"
    if trash != folder:
        try:
            os.rename(folder, trash)
        except OSError:
            return  # gone already (another process removed it)
    shutil.rmtree(trash, ignore_errors=True)


def _read_pointer(root: Path) -> str:
    raw = read_bytes(root, CURRENT_FILE, max_bytes=_POINTER_BYTES, follow=True)
    return raw.decode("utf-8", errors="replace").strip()


def _current_name(root: Path) -> str | None:
    try:
        return _read_pointer(root) or None
    except (OSError, CorruptIndexError):
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
    """The live snapshot folder of an index directory (``CURRENT`` read through no link)."""
    pointer = root / CURRENT_FILE
    if not root.exists():
        raise IndexNotFoundError(f"no index at {root}: the directory does not exist")
    try:
        name = _read_pointer(root)
    except (FileNotFoundError, NotADirectoryError):
        raise IndexNotFoundError(
            f"{root} is not a colrank index (no {CURRENT_FILE} file); build one with "
            "ColrankIndex.save() or `colrank index`."
        ) from None
    except OSError as exc:
        raise CorruptIndexError(f"{pointer} is unreadable: {exc}") from exc
    if not _SNAPSHOT_NAME.fullmatch(name):  # a sibling folder colrank named, nothing else
        raise CorruptIndexError(f"{pointer} does not name a colrank snapshot; the index is damaged")
    snapshot = root / name
    if snapshot.is_symlink() or not snapshot.is_dir():
        raise CorruptIndexError(
            f"{pointer} names a missing snapshot {name!r}; the index is damaged"
        )
    return snapshot


def read_manifest(snapshot: Path) -> dict[str, Any]:
    """Parse a snapshot's manifest (a JSON object of bounded size, read through no link)."""
    try:
        manifest = read_json(snapshot, MANIFEST_FILE)
    except OSError as exc:
        raise CorruptIndexError(f"manifest of {snapshot} is missing or unreadable: {exc}") from exc
    except CorruptIndexError as exc:
        raise CorruptIndexError(f"manifest of {snapshot} is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise CorruptIndexError(f"manifest of {snapshot} is not a JSON object")
    return manifest


def verify_files(snapshot: Path, manifest: dict[str, Any], *, checksums: bool = True) -> None:
    """Check every file the manifest lists: present, right size, and (optionally) checksum.

    A listed name must be a regular file inside the snapshot (no ``..``, no absolute
    path, no symbolic link, no FIFO or device): a hostile manifest cannot make a load
    read or measure other files. Files it leaves out are checked the same way when the
    stores open them (:mod:`colrank.store.local.files`).
    """
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
        raise CorruptIndexError(f"the manifest of {snapshot.name} is malformed")
    for name, entry in files.items():
        try:
            size = file_size(snapshot, name)
        except FileNotFoundError:
            raise CorruptIndexError(f"index file {name} is missing from {snapshot}") from None
        if size != entry.get("bytes"):
            raise CorruptIndexError(
                f"index file {name} has {size} bytes, the manifest says {entry.get('bytes')}: "
                "the index is truncated or was modified; rebuild it or restore a backup."
            )
        if checksums and sha256(snapshot, name) != entry.get("sha256"):
            raise CorruptIndexError(
                f"index file {name} fails its checksum: the index is corrupted; "
                "rebuild it or restore a backup."
            )


__all__ = [
    "check_index_folder",
    "commit_manifest",
    "current_snapshot",
    "read_manifest",
    "sha256_file",
    "verify_files",
    "write_snapshot",
]
