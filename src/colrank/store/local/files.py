"""Every file a saved index opens: a regular file inside its folder, never a link, size checked.

An index folder can come from elsewhere (a download, a shared drive), so nothing in it is
taken on trust, whatever its manifest says or leaves out. Each open here goes through
:func:`open_index_file`: every path component below the folder is opened with
``O_NOFOLLOW`` (a symbolic link is refused, nothing outside is read) and ``O_NONBLOCK``
(a FIFO cannot block the open), then ``fstat`` must show a regular file (not a FIFO, a
device or a socket) no larger than the caller's bound, and only then is it read, by at
most its own size. ``.npy`` headers are checked against the file's size before an array
is allocated or mapped, so a header declaring 10**12 rows is refused, not allocated.
Any such refusal is a :class:`~colrank.errors.CorruptIndexError`.

The path up to the folder is the user's and may pass through links of their own; the
folder's last component is not followed either (a snapshot folder), except for the index
folder the user names (``follow=True``, to read its ``CURRENT``).

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.json").write_text('{"x": 1}')
    >>> read_json(folder, "a.json", max_bytes=1024)
    {'x': 1}
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from colrank.errors import CorruptIndexError

SMALL_FILE_BYTES = 16 << 20
"""Bound for the JSON files of an index (manifest, codec and BM25 settings)."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_LINK_ERRORS = (errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP))
_AT = os.open in os.supports_dir_fd  # POSIX; elsewhere each component is checked by path


def _parts(name: str) -> list[str]:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise CorruptIndexError(f"index file name {name!r} points outside its folder")
    return parts


def _open_at(name: str, flags: int, dir_fd: int | None, shown: str) -> int:
    try:
        return os.open(name, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise CorruptIndexError(f"index file {shown} is a symbolic link; refused") from None
        if exc.errno == errno.ENOTDIR:
            raise CorruptIndexError(f"index file {shown} is not a regular file; refused") from None
        raise  # missing or unreadable: the caller's error (and LocalBackend.load's retry)


def _walk(folder: Path, parts: list[str], name: str, follow: bool) -> list[int]:
    """Open the folder, each sub-folder and the file, each relative to the one before."""
    flags = os.O_RDONLY | _DIRECTORY
    if follow:
        fds = [os.open(folder, flags | _CLOEXEC)]
    else:
        fds = [_open_at(str(folder), flags, None, folder.name)]
    try:
        for part in parts[:-1]:
            fds.append(_open_at(part, flags, fds[-1], name))
        fds.append(_open_at(parts[-1], os.O_RDONLY, fds[-1], name))
    except BaseException:
        for fd in reversed(fds):
            os.close(fd)
        raise
    return fds


def _walk_paths(folder: Path, parts: list[str], name: str) -> int:  # pragma: no cover
    """Where ``open`` takes no folder descriptor (Windows): no link on the way, then open."""
    here = folder
    for part in parts:
        here = here / part
        if stat.S_ISLNK(os.lstat(here).st_mode):
            raise CorruptIndexError(f"index file {name} is a symbolic link; refused")
    return os.open(here, os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0))


@contextlib.contextmanager
def open_index_file(
    folder: Path, name: str, *, max_bytes: int | None = None, follow: bool = False
) -> Iterator[tuple[int, int]]:
    """``(file descriptor, size)`` of ``folder/name``, a regular file reached by no link.

    Args:
        folder: the folder (opened as given when ``follow``, else refused if a link).
        name: a relative name, ``/``-separated (``bm25/vocab.json``).
        max_bytes: refuse a larger file before reading it.
        follow: whether the folder's own last component may be a symbolic link (only
            the index folder the user names; never a snapshot folder).
    """
    parts = _parts(name)
    fds = _walk(folder, parts, name, follow) if _AT else [_walk_paths(folder, parts, name)]
    try:
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise CorruptIndexError(f"index file {name} is not a regular file; refused")
        if max_bytes is not None and info.st_size > max_bytes:
            raise CorruptIndexError(
                f"index file {name} has {info.st_size} bytes, more than {max_bytes} allowed"
            )
        yield fds[-1], info.st_size
    finally:
        for fd in reversed(fds):
            os.close(fd)


@contextlib.contextmanager
def index_file(folder: Path, name: str, *, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """:func:`open_index_file` as a binary file object (closed with the block)."""
    with (
        open_index_file(folder, name, max_bytes=max_bytes) as (fd, _),
        os.fdopen(os.dup(fd), "rb") as handle,
    ):
        yield handle


def file_size(folder: Path, name: str) -> int:
    """Size of an index file (checked as :func:`open_index_file` checks it)."""
    with open_index_file(folder, name) as (_, size):
        return size


def read_bytes(
    folder: Path, name: str, *, max_bytes: int | None = None, follow: bool = False
) -> bytes:
    """The whole content of an index file, read by at most its size."""
    with open_index_file(folder, name, max_bytes=max_bytes, follow=follow) as (fd, size):
        chunks, left = [], size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                raise CorruptIndexError(f"index file {name} shrank while being read")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def read_json(folder: Path, name: str, *, max_bytes: int = SMALL_FILE_BYTES) -> Any:
    """A UTF-8 JSON index file; anything else is a :class:`CorruptIndexError`."""
    data = read_bytes(folder, name, max_bytes=max_bytes)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptIndexError(f"index file {name} is not valid JSON: {exc}") from None


def sha256(folder: Path, name: str, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of an index file."""
    digest = hashlib.sha256()
    with open_index_file(folder, name) as (fd, _):
        while block := os.read(fd, chunk):
            digest.update(block)
    return digest.hexdigest()


def load_npy(folder: Path, name: str, *, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array (no pickle), its header checked against the file size first."""
    with index_file(folder, name) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            version = np.lib.format.read_magic(handle)
            readers = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }
            if version not in readers:
                raise ValueError(f"npy format version {version} is not supported")
            shape, fortran, dtype = readers[version](handle, max_header_size=1 << 16)
        except (ValueError, OSError, SyntaxError) as exc:
            raise CorruptIndexError(f"index file {name} is not a .npy array: {exc}") from None
        if dtype.hasobject:
            raise CorruptIndexError(f"index file {name} holds Python objects; refused")
        offset = handle.tell()
        count = int(np.prod(shape, dtype=object))
        if offset + count * dtype.itemsize != size:
            raise CorruptIndexError(
                f"index file {name} declares shape {shape} ({count * dtype.itemsize} bytes) "
                f"but holds {size - offset} bytes of data"
            )
        order = "F" if fortran else "C"
        if mmap and count:
            return np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        flat = np.fromfile(handle, dtype=dtype, count=count)
        return flat.reshape(shape, order=order)


__all__ = [
    "SMALL_FILE_BYTES",
    "file_size",
    "index_file",
    "load_npy",
    "open_index_file",
    "read_bytes",
    "read_json",
    "sha256",
]
