"""Precomputed document token embeddings, stored contiguously with offsets.

Rows are addressed by the engine's internal integer ids (increasing as documents are
added). The embeddings of all documents sit in one ``(total_tokens, width)`` byte
array written by a codec (:mod:`colrank.store.codecs`: float16 by default, float32, int8 or
product quantization); a document is a ``(start, length)`` slice of it. On disk that
array is a ``.npy`` file, opened memory-mapped, so a loaded index does not read its
token embeddings into RAM. Deletion marks rows dead; :meth:`TokenStore.compact`
(and every save) drops their tokens.

We write our own small store rather than use a vector database because MaxSim needs
whole per-document token matrices fetched by id, which numpy slicing of a memmap
gives at memory speed; ``.npy`` is numpy's own stable format (no pickle).

Example:
    >>> import numpy as np
    >>> store = TokenStore(dim=2)
    >>> store.add([0, 1], [np.ones((3, 2)), np.zeros((1, 2))])
    >>> [a.shape for a in store.get([1, 0])]
    [(1, 2), (3, 2)]
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from colrank.errors import (
    CorruptIndexError,
    DimensionMismatchError,
    UnknownIdError,
)
from colrank.index_settings import DEFAULT_STORAGE_CODEC
from colrank.store.codecs import Codec, make_codec
from colrank.store.local.files import load_npy, read_bytes, read_json

TOKENS_FILE = "tokens.npy"
IIDS_FILE = "token_doc_ids.npy"
LENGTHS_FILE = "token_lengths.npy"
CODEC_FILE = "token_codec.json"
_MAX_LOOSE_SEGMENTS = 32  # small in-memory segments kept before they are joined
_MERGE_BYTES = 256 << 20  # a joined segment's largest size


class TokenStore:
    """Append-only token embedding storage with tombstone deletes."""

    def __init__(self, dim: int, codec: str | Codec = DEFAULT_STORAGE_CODEC) -> None:
        self.dim = int(dim)
        self.codec = make_codec(codec, self.dim) if isinstance(codec, str) else codec
        self._segments: list[np.ndarray] = []
        self._segment_starts: list[int] = []
        self._n_tokens = 0
        self._iids = np.zeros(0, dtype=np.int64)
        self._starts = np.zeros(0, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.int32)
        self._alive = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------ info
    def __len__(self) -> int:
        return int(self._alive.sum())

    def __contains__(self, iid: object) -> bool:
        if not isinstance(iid, (int, np.integer)):
            return False
        pos = int(np.searchsorted(self._iids, iid))
        return pos < len(self._iids) and self._iids[pos] == iid and bool(self._alive[pos])

    @property
    def ids(self) -> np.ndarray:
        """Internal ids of live documents, ascending."""
        return self._iids[self._alive]

    @property
    def n_tokens(self) -> int:
        """Tokens held by live documents."""
        return int(self._lengths[self._alive].sum())

    @property
    def nbytes(self) -> int:
        """Bytes of token embeddings held by live documents."""
        return self.n_tokens * self.codec.width

    def lengths(self, iids: Sequence[int]) -> np.ndarray:
        """Token counts of the given documents."""
        return self._lengths[self._positions(iids)]

    # ---------------------------------------------------------------- writes
    def add(self, iids: Sequence[int], embeddings: Sequence[np.ndarray]) -> None:
        """Append documents; ``iids`` must be increasing and above every stored id."""
        if len(iids) != len(embeddings):
            raise ValueError("iids and embeddings differ in length")
        if not len(iids):
            return
        new_iids = np.asarray(iids, dtype=np.int64)
        if np.any(np.diff(new_iids) <= 0) or (len(self._iids) and new_iids[0] <= self._iids[-1]):
            raise ValueError("token store ids must be increasing and new")
        for emb in embeddings:
            if emb.ndim == 2 and emb.shape[0] == 0:
                raise ValueError("a document has no token embeddings")
            if emb.ndim != 2 or emb.shape[1] != self.dim:
                raise DimensionMismatchError(
                    f"token embeddings of shape {emb.shape} do not fit this index "
                    f"(dimension {self.dim}); was it built with another ColBERT model?"
                )
        lengths = np.array([e.shape[0] for e in embeddings], dtype=np.int32)
        vectors = np.concatenate([np.asarray(e, dtype=np.float32) for e in embeddings])
        if not self.codec.trained:
            self.codec.fit(vectors)
        block = self.codec.encode(vectors)
        starts = self._n_tokens + np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)])
        self._segment_starts.append(self._n_tokens)
        self._segments.append(block)
        self._n_tokens += int(block.shape[0])
        self._iids = np.concatenate([self._iids, new_iids])
        self._starts = np.concatenate([self._starts, starts.astype(np.int64)])
        self._lengths = np.concatenate([self._lengths, lengths])
        self._alive = np.concatenate([self._alive, np.ones(len(new_iids), dtype=bool)])
        if len(self._segments) > _MAX_LOOSE_SEGMENTS:
            self._merge_in_memory_segments()

    def delete(self, iids: Iterable[int]) -> None:
        """Mark documents dead (their tokens go at the next compaction or save)."""
        self._alive[self._positions(list(iids))] = False

    def compact(self) -> None:
        """Rewrite the store in memory without dead documents' tokens."""
        live = np.flatnonzero(self._alive)
        tokens = np.empty((int(self._lengths[live].sum()), self.codec.width), dtype=np.uint8)
        self._copy_rows(live, tokens)
        lengths = self._lengths[live]
        self._reset(tokens, self._iids[live], lengths)

    # ----------------------------------------------------------------- reads
    def get(self, iids: Sequence[int]) -> list[np.ndarray]:
        """Decoded ``(n_tokens, dim)`` float32 embeddings of the given documents, in order."""
        flat, lengths = self.gather_flat(iids)
        return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []

    def gather_codes(self, iids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(T, width)`` encoded rows of the documents back to back, and their lengths.

        Plain memory copies, no decoding: pass the rows to
        ``maxsim_flat(..., decode=store.codec.decode)``, which decodes them block by block.
        """
        positions = self._positions(iids)
        lengths = self._lengths[positions].astype(np.int64)
        rows = np.empty((int(lengths.sum()), self.codec.width), dtype=np.uint8)
        self._copy_rows(positions, rows)
        return rows, lengths

    def gather_flat(self, iids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(T, dim)`` float32 embeddings of the documents back to back, and their lengths.

        Code rows are gathered with plain memory copies, then decoded in one call
        (for float16, torch's cast is much faster than numpy's per-slice cast).
        """
        rows, lengths = self.gather_codes(iids)
        return self.codec.decode(rows).numpy(), lengths

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[str]:
        """Write live documents to ``directory``; returns the file names written."""
        live = np.flatnonzero(self._alive)
        lengths = self._lengths[live]
        total = int(lengths.sum())
        tokens = np.lib.format.open_memmap(
            directory / TOKENS_FILE, mode="w+", dtype=np.uint8, shape=(total, self.codec.width)
        )
        self._copy_rows(live, tokens)
        tokens.flush()
        del tokens
        np.save(directory / IIDS_FILE, self._iids[live], allow_pickle=False)
        np.save(directory / LENGTHS_FILE, lengths, allow_pickle=False)
        (directory / CODEC_FILE).write_text(json.dumps({"codec": self.codec.name, "dim": self.dim}))
        return [TOKENS_FILE, IIDS_FILE, LENGTHS_FILE, CODEC_FILE, *self.codec.save(directory)]

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> TokenStore:
        """Open a saved store; token embeddings stay on disk when ``mmap`` is true."""
        try:
            tokens = load_npy(directory, TOKENS_FILE, mmap=mmap)
            iids = load_npy(directory, IIDS_FILE)
            lengths = load_npy(directory, LENGTHS_FILE)
            meta = read_json(directory, CODEC_FILE)
            codec = make_codec(meta["codec"], int(meta["dim"]))
            if codec.params_file is not None:
                codec.load_params_bytes(read_bytes(directory, codec.params_file))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(f"token store in {directory} is unreadable: {exc}") from exc
        if (
            tokens.ndim != 2
            or tokens.shape[1] != codec.width
            or len(iids) != len(lengths)
            or int(lengths.sum()) != tokens.shape[0]
        ):
            raise CorruptIndexError(
                f"token store in {directory} is inconsistent "
                f"({tokens.shape[0]} tokens, {int(lengths.sum())} expected)"
            )
        store = cls(dim=codec.dim, codec=codec)
        store._reset(tokens, iids.astype(np.int64), lengths.astype(np.int32))
        return store

    # -------------------------------------------------------------- internals
    def _reset(self, tokens: np.ndarray, iids: np.ndarray, lengths: np.ndarray) -> None:
        self._segments = [tokens]
        self._segment_starts = [0]
        self._n_tokens = int(tokens.shape[0])
        self._iids = iids
        self._lengths = lengths
        self._starts = np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)]).astype(
            np.int64
        )[: len(lengths)]
        self._alive = np.ones(len(iids), dtype=bool)

    def _positions(self, iids: Sequence[int]) -> np.ndarray:
        wanted = np.asarray(iids, dtype=np.int64)
        pos = np.searchsorted(self._iids, wanted)
        pos_clipped = np.minimum(pos, max(len(self._iids) - 1, 0))
        ok = (
            (pos < len(self._iids))
            & (self._iids[pos_clipped] == wanted if len(self._iids) else False)
            & (self._alive[pos_clipped] if len(self._iids) else False)
        )
        if not np.all(ok):
            missing = wanted[~np.asarray(ok, dtype=bool)][:5].tolist()
            raise UnknownIdError(f"no token embeddings for internal ids {missing}")
        return pos

    def _copy_rows(self, positions: np.ndarray, out: np.ndarray) -> None:
        """Copy the code rows of the documents at ``positions`` into ``out``, back to back."""
        cursor = 0
        for pos in positions:
            n = int(self._lengths[pos])
            out[cursor : cursor + n] = self._slice(int(self._starts[pos]), n)
            cursor += n

    def _slice(self, start: int, length: int) -> np.ndarray:
        seg = bisect.bisect_right(self._segment_starts, start) - 1
        local = start - self._segment_starts[seg]
        return self._segments[seg][local : local + length]

    def _merge_in_memory_segments(self) -> None:
        """Join the trailing small in-memory segments, in pieces of at most 256 MB.

        Lookups stay cheap (few segments) without copying the whole store on every merge
        (which doubled its memory while it was built): full-size segments and memmaps
        stay as they are.
        """
        first = len(self._segments)
        while first > 0 and not isinstance(self._segments[first - 1], np.memmap):
            if self._segments[first - 1].nbytes >= _MERGE_BYTES:
                break
            first -= 1
        if len(self._segments) - first <= _MAX_LOOSE_SEGMENTS:
            return
        segments, starts = self._segments[:first], self._segment_starts[:first]
        group: list[np.ndarray] = []
        size = 0
        for segment, start in zip(
            self._segments[first:], self._segment_starts[first:], strict=True
        ):
            if group and size + segment.nbytes > _MERGE_BYTES:
                segments.append(np.concatenate(group) if len(group) > 1 else group[0])
                group, size = [], 0
            if not group:
                starts.append(start)
            group.append(segment)
            size += segment.nbytes
        segments.append(np.concatenate(group) if len(group) > 1 else group[0])
        self._segments, self._segment_starts = segments, starts


__all__ = ["TokenStore"]
