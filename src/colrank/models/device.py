"""Device and dtype choice, token-budget batching, and out-of-memory back-off.

Everything here takes the facts about the machine as an argument
(:class:`DeviceFacts`), so the CUDA and MPS paths are tested on a CPU-only machine by
injecting facts and a simulated out-of-memory error.

Example:
    >>> facts = DeviceFacts(cuda_available=True, cuda_bf16=True)
    >>> resolve_device("auto", facts), resolve_dtype("cuda", "auto", facts)
    ('cuda', torch.bfloat16)
    >>> token_budget_batches([5, 50, 10, 40], token_budget=100)
    [[1, 3], [2, 0]]
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from colrank.errors import InvalidInputError, OutOfMemoryError

logger = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class DeviceFacts:
    """What the machine offers; :func:`detect_device_facts` reads the real ones."""

    cuda_available: bool = False
    cuda_count: int = 1
    cuda_bf16: bool = False
    mps_available: bool = False
    cpu_bf16: bool = False  # native bfloat16 matrix products (AVX512-BF16, AMX, Arm BF16)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU multiplies bfloat16 natively, from Linux's ``/proc/cpuinfo`` flags.

    x86 ``avx512_bf16`` / ``amx_bf16`` or Arm ``bf16``. Elsewhere (no such file) False:
    colrank then keeps float32, which is never the slower choice.
    """
    if cpuinfo is None:
        return _this_cpu_has_native_bf16()
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(cpuinfo.split()))


@functools.lru_cache(maxsize=1)
def _this_cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return cpu_has_native_bf16(handle.read())
    except OSError:
        return False


def detect_device_facts() -> DeviceFacts:
    """Ask torch what accelerators this process can use."""
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend and mps_backend.is_available())
    return DeviceFacts(
        cuda_available=cuda,
        cuda_count=torch.cuda.device_count() if cuda else 0,
        cuda_bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        mps_available=mps,
        cpu_bf16=cpu_has_native_bf16(),
    )


def resolve_device(preference: str = "auto", facts: DeviceFacts | None = None) -> str:
    """Turn ``auto`` into cuda → mps → cpu; check an explicit choice is available.

    Raises:
        InvalidInputError: the requested accelerator is not available.
    """
    facts = facts or detect_device_facts()
    if preference == "auto":
        if facts.cuda_available:
            return "cuda"
        if facts.mps_available:
            return "mps"
        return "cpu"
    base, _, index = preference.partition(":")
    if base == "cuda":
        if not facts.cuda_available:
            raise InvalidInputError(
                f"device {preference!r} was requested but CUDA is not available; "
                "use device='auto' or 'cpu'."
            )
        if index and int(index) >= facts.cuda_count:
            raise InvalidInputError(
                f"device {preference!r}: only {facts.cuda_count} CUDA device(s) are visible."
            )
    elif base == "mps" and not facts.mps_available:
        raise InvalidInputError("device 'mps' was requested but MPS is not available.")
    elif base not in {"cpu", "cuda", "mps"}:
        raise InvalidInputError(f"unknown device {preference!r}")
    return preference


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(
    device: str, preference: str = "auto", facts: DeviceFacts | None = None
) -> torch.dtype:
    """Pick the model dtype: bf16 (or fp16) on CUDA, fp16 on MPS, fp32 on CPU."""
    if preference != "auto":
        if preference not in _DTYPES:
            raise InvalidInputError(f"unknown dtype {preference!r}")
        if device == "cpu" and preference == "float16":
            logger.warning("float16 on CPU is slow and imprecise; float32 is recommended.")
        return _DTYPES[preference]
    base = device.split(":", 1)[0]
    if base == "cuda":
        facts = facts or detect_device_facts()
        return torch.bfloat16 if facts.cuda_bf16 else torch.float16
    if base == "mps":
        return torch.float16
    return torch.float32


def resolve_maxsim_dtype(preference: str = "auto", facts: DeviceFacts | None = None) -> torch.dtype:
    """The dtype MaxSim multiplies stored tokens in (on the CPU).

    ``auto``: bfloat16 where the CPU multiplies it natively (about 1.7x faster MaxSim
    measured on an AVX512-BF16 CPU, same rankings in docs/benchmarks.md), else float32.
    """
    if preference == "float32":
        return torch.float32
    if preference == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if native_bf16(facts) else torch.float32


def native_bf16(facts: DeviceFacts | None = None) -> bool:
    """Whether the CPU multiplies bfloat16 natively (``facts``' answer when given)."""
    return facts.cpu_bf16 if facts is not None else cpu_has_native_bf16()


def token_budget_batches(
    lengths: Sequence[int], token_budget: int, max_batch_size: int | None = None
) -> list[list[int]]:
    """Group item indices into batches whose padded size fits a token budget.

    Items are sorted longest first (so an out-of-memory error shows on the first batch,
    and padding is small); a batch's cost is ``len(batch) * longest item``. An item
    longer than the budget gets a batch of its own.

    Returns:
        Lists of indices into ``lengths``; every index appears exactly once.
    """
    if token_budget <= 0:
        raise InvalidInputError("token_budget must be > 0")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for idx in order:
        length = max(1, int(lengths[idx]))
        longest_if_added = max(longest, length)
        too_big = current and longest_if_added * (len(current) + 1) > token_budget
        too_many = max_batch_size is not None and len(current) >= max_batch_size
        if too_big or too_many:
            batches.append(current)
            current, longest_if_added = [], length
        current.append(idx)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA / MPS / generic allocator out-of-memory errors."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def empty_device_cache(device: str) -> None:
    """Release cached accelerator memory after an out-of-memory error."""
    base = device.split(":", 1)[0]
    if base == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif base == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def run_batches(
    batches: Sequence[Sequence[int]],
    fn: Callable[[list[int]], Sequence[R]],
    *,
    n_items: int | None = None,
    on_oom: Callable[[], None] | None = None,
    progress: bool = False,
    desc: str = "Encoding",
) -> list[R]:
    """Call ``fn`` on each batch of indices and return its outputs in index order.

    On an out-of-memory error the failing batch is halved and retried, and later
    batches are capped at that smaller size, down to one item; one item that still
    does not fit raises :class:`~colrank.errors.OutOfMemoryError`.

    Args:
        batches: lists of item indices, e.g. from :func:`token_budget_batches`.
        fn: maps a list of indices to one result per index, in that order.
        n_items: total number of items (default: the indices' count).
        on_oom: called after each out-of-memory error (e.g. to empty the cache).
        progress: show a tqdm bar counting items (never for a single batch).
        desc: the bar's label.
    """
    total = n_items if n_items is not None else sum(len(b) for b in batches)
    results: list[R | None] = [None] * total
    done = [False] * total
    queue: deque[list[int]] = deque(list(b) for b in batches if b)
    cap: int | None = None
    one_step = len(queue) <= 1  # a bar for a few texts is noise (and ends as it starts)
    with tqdm(total=total, desc=desc, disable=not progress or one_step, unit="text") as bar:
        while queue:
            batch = queue.popleft()
            if cap is not None and len(batch) > cap:
                pieces = [batch[i : i + cap] for i in range(0, len(batch), cap)]
                queue.extendleft(reversed(pieces))
                continue
            try:
                outputs = fn(batch)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if on_oom is not None:
                    on_oom()
                if len(batch) == 1:
                    raise OutOfMemoryError(
                        "out of memory on a single item; lower document_length, "
                        "choose a smaller dtype, or use device='cpu'."
                    ) from exc
                half = len(batch) // 2
                cap = half
                logger.warning(
                    "out of memory on a batch of %d; retrying with batches of %d",
                    len(batch),
                    half,
                )
                queue.extendleft([batch[half:], batch[:half]])
                continue
            if len(outputs) != len(batch):
                raise RuntimeError(
                    f"batch function returned {len(outputs)} results for {len(batch)} items"
                )
            for idx, out in zip(batch, outputs, strict=True):
                results[idx] = out
                done[idx] = True
            bar.update(len(batch))
    if not all(done):
        missing = [i for i, ok in enumerate(done) if not ok][:5]
        raise InvalidInputError(f"batches did not cover every item (missing e.g. {missing})")
    return results  # type: ignore[return-value]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the enclosed PyTorch ops on the calling thread alone.

    After a parallel region PyTorch's OpenMP workers spin-wait for a few milliseconds; on
    a small CPU that spinning takes the cores from the ONNX Runtime call that follows.
    Measured on 2 cores: the ColBERT head's projection of one query (a 32 x 384 x 384
    product) on two threads made the query's encoding 12-13 ms instead of 7.3-7.5 ms on
    one; MaxSim over 100 candidates on two threads made the next query's encoding
    15-16 ms instead of 10.3 ms. The count is process-wide: PyTorch work on other
    threads meanwhile runs on one thread too; the count is restored after.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = [
    "DeviceFacts",
    "detect_device_facts",
    "empty_device_cache",
    "is_out_of_memory",
    "one_torch_thread",
    "resolve_device",
    "native_bf16",
    "resolve_dtype",
    "run_batches",
    "token_budget_batches",
]
