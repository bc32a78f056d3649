"""MaxSim (late interaction) scoring: pure functions, tensors in, scores out.

For each query token, take the best dot product over the document's tokens, then sum
over query tokens. Padding is masked with ``-inf`` before the max, so a padded
position never wins even when every real similarity is negative.

Example:
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> docs, mask = pad_token_sets([torch.tensor([[1.0, 0.0]]), torch.eye(2)])
    >>> maxsim_scores(q, docs, mask)
    tensor([1., 2.])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

# Upper bound on elements of one (queries x docs x query tokens x doc tokens) block.
_MAX_BLOCK_ELEMENTS = 1 << 25
# Token rows decoded and multiplied together by maxsim_flat: a decoded block (1.5 MB of
# float32 at 384 dims) stays in cache for its matmul. benchmarks/maxsim_blocks.py
# compares 256-8192 and decoding everything first (docs/benchmarks.md).
FLAT_BLOCK_ROWS = 1024


def pad_token_sets(
    token_sets: Sequence[np.ndarray | torch.Tensor],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ragged ``(L_i, d)`` token sets into ``(N, L_max, d)`` plus a ``(N, L_max)`` mask."""
    if not token_sets:
        raise ValueError("pad_token_sets needs at least one token set")
    dim = token_sets[0].shape[-1]
    longest = max(int(t.shape[0]) for t in token_sets)
    out = torch.zeros((len(token_sets), longest, dim), dtype=dtype)
    mask = torch.zeros((len(token_sets), longest), dtype=torch.bool)
    for i, tokens in enumerate(token_sets):
        if tokens.shape[-1] != dim:
            raise ValueError(f"token set {i} has dimension {tokens.shape[-1]}, expected {dim}")
        tensor = torch.as_tensor(np.asarray(tokens) if not torch.is_tensor(tokens) else tokens)
        n = tensor.shape[0]
        out[i, :n] = tensor.to(dtype)
        mask[i, :n] = True
    return out.to(device), mask.to(device)


def maxsim_scores(
    queries: torch.Tensor,
    documents: torch.Tensor,
    documents_mask: torch.Tensor | None = None,
    queries_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Score every query against every document.

    Args:
        queries: ``(Lq, d)`` for one query or ``(Q, Lq, d)`` for several.
        documents: ``(N, Ld, d)`` padded document tokens.
        documents_mask: ``(N, Ld)`` true for real tokens (None: all real).
        queries_mask: ``(Q, Lq)`` true for real query tokens (None: all real).

    Returns:
        ``(N,)`` scores for one query, ``(Q, N)`` for several.
    """
    single = queries.dim() == 2
    q = queries.unsqueeze(0) if single else queries
    if q.shape[-1] != documents.shape[-1]:
        raise ValueError(
            f"query dimension {q.shape[-1]} != document dimension {documents.shape[-1]}"
        )
    docs = documents.to(device=q.device, dtype=q.dtype)
    n_docs, doc_len = docs.shape[0], docs.shape[1]
    if documents_mask is None:
        documents_mask = torch.ones((n_docs, doc_len), dtype=torch.bool, device=q.device)
    documents_mask = documents_mask.to(device=q.device, dtype=torch.bool)
    n_queries, q_len = q.shape[0], q.shape[1]

    per_doc = max(1, n_queries * q_len * max(doc_len, 1))
    step = max(1, _MAX_BLOCK_ELEMENTS // per_doc)
    scores = torch.empty((n_queries, n_docs), dtype=q.dtype, device=q.device)
    with torch.no_grad():
        for start in range(0, n_docs, step):
            block = docs[start : start + step]
            block_mask = documents_mask[start : start + step]
            sim = torch.einsum("qld,nmd->qnlm", q, block)
            sim = sim.masked_fill(~block_mask[None, :, None, :], float("-inf"))
            best = sim.max(dim=-1).values
            best = torch.where(torch.isinf(best), torch.zeros_like(best), best)
            if queries_mask is not None:
                best = best * queries_mask.to(device=q.device, dtype=q.dtype)[:, None, :]
            scores[:, start : start + step] = best.sum(dim=-1)
    return scores[0] if single else scores


def maxsim_ragged(
    query: torch.Tensor,
    token_sets: Sequence[np.ndarray | torch.Tensor],
    *,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Score one ``(Lq, d)`` query against ragged document token sets; ``(N,)`` scores."""
    if not token_sets:
        return torch.empty(0)
    docs, mask = pad_token_sets(token_sets, dtype=torch.float32, device=device)
    return maxsim_scores(query.to(device=device, dtype=torch.float32), docs, mask)


def maxsim_flat(
    query: torch.Tensor,
    tokens: np.ndarray,
    lengths: np.ndarray,
    *,
    decode: Callable[[np.ndarray], torch.Tensor] | None = None,
    block_rows: int = FLAT_BLOCK_ROWS,
    per_token: bool = False,
    compute_dtype: torch.dtype = torch.float32,
) -> np.ndarray:
    """Score one ``(Lq, d)`` query against documents stored back to back, without padding.

    Args:
        query: ``(Lq, d)`` query token embeddings.
        tokens: ``(T, d)`` token embeddings of all documents, concatenated (any float
            dtype; cast to float32 here with torch), or ``(T, w)`` codes when ``decode``
            is given.
        lengths: ``(N,)`` tokens per document (each >= 1), summing to ``T``.
        decode: turns a block of code rows into a ``(rows, d)`` float tensor (a token
            store codec's ``decode``, best asked for ``compute_dtype`` so a bfloat16
            store needs no cast); None when ``tokens`` are already floats.
        block_rows: rows decoded and multiplied at a time.
        per_token: return each query token's best similarity, ``(N, Lq)``, instead of
            their sum (for weighting query tokens, e.g. leaving out ``[MASK]`` ones).
        compute_dtype: ``torch.float32``, or ``torch.bfloat16`` to multiply each decoded
            block in bfloat16 (fast on CPUs with native bfloat16; similarities then
            carry bfloat16 rounding, about 2e-3 at most for unit vectors).

    Returns:
        ``(N,)`` float32 scores (``(N, Lq)`` with ``per_token``). The rows are decoded
        and multiplied by the query one block at a time, so each decoded block is still
        in cache for its matrix product (faster than decoding all rows first, and no
        full float32 copy is made), then one segmented max per document: no padding
        is materialised.

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> docs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]], dtype=np.float16)
        >>> maxsim_flat(q, docs, np.array([2, 1])).tolist()  # doc 1: 1 + 0.5; doc 2: 0 + 2
        [1.5, 2.0]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return np.zeros((0, query.shape[0]) if per_token else 0, dtype=np.float32)
    if lengths.min() < 1 or int(lengths.sum()) != tokens.shape[0]:
        raise ValueError("lengths must be >= 1 and sum to the number of token rows")
    q = query.to(device="cpu", dtype=torch.float32)
    low = compute_dtype != torch.float32
    qt = q.T.to(compute_dtype)
    total = tokens.shape[0]
    sim = torch.empty((total, q.shape[0]), dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, total, block_rows):
            rows = np.ascontiguousarray(tokens[start : start + block_rows])
            block = decode(rows) if decode is not None else torch.from_numpy(rows).float()
            if block.shape[-1] != q.shape[-1]:
                raise ValueError(
                    f"query dimension {q.shape[-1]} != document dimension {block.shape[-1]}"
                )
            if low:  # the product in bfloat16, widened back into the float32 buffer
                sim[start : start + block_rows] = torch.matmul(block.to(compute_dtype), qt)
            else:
                torch.matmul(block.float(), qt, out=sim[start : start + block_rows])
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
    best = np.maximum.reduceat(sim.numpy(), starts, axis=0)
    return best if per_token else best.sum(axis=1, dtype=np.float32)


__all__ = ["maxsim_flat", "maxsim_ragged", "maxsim_scores", "pad_token_sets"]
