"""Device choice, dtype, token-budget batching and out-of-memory back-off, on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colrank import DenseEncoder, InvalidInputError, OutOfMemoryError
from colrank.models.device import (
    DeviceFacts,
    cpu_has_native_bf16,
    is_out_of_memory,
    resolve_device,
    resolve_dtype,
    resolve_maxsim_dtype,
    run_batches,
    token_budget_batches,
)

CUDA = DeviceFacts(cuda_available=True, cuda_count=2, cuda_bf16=True)
OLD_CUDA = DeviceFacts(cuda_available=True, cuda_count=1, cuda_bf16=False)
MPS = DeviceFacts(mps_available=True)
CPU = DeviceFacts()


def simulated_oom() -> BaseException:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize(("facts", "expected"), [(CUDA, "cuda"), (MPS, "mps"), (CPU, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(facts: DeviceFacts, expected: str) -> None:
    assert resolve_device("auto", facts) == expected


def test_explicit_device_must_exist() -> None:
    assert resolve_device("cuda:1", CUDA) == "cuda:1"
    assert resolve_device("cpu", CUDA) == "cpu"
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        resolve_device("cuda", CPU)
    with pytest.raises(InvalidInputError, match="only 2"):
        resolve_device("cuda:2", CUDA)
    with pytest.raises(InvalidInputError, match="MPS"):
        resolve_device("mps", CPU)


def test_dtype_per_device() -> None:
    assert resolve_dtype("cuda", "auto", CUDA) == torch.bfloat16
    assert resolve_dtype("cuda:0", "auto", OLD_CUDA) == torch.float16
    assert resolve_dtype("mps", "auto", MPS) == torch.float16
    assert resolve_dtype("cpu", "auto", CPU) == torch.float32
    assert resolve_dtype("cuda", "float32", CUDA) == torch.float32


def test_token_budget_batches_cover_everything_within_budget() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=257).tolist()
    batches = token_budget_batches(lengths, token_budget=1000, max_batch_size=16)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * longest <= 1000
    # longest first, so padding within a batch is small
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_item_longer_than_budget_gets_its_own_batch() -> None:
    assert token_budget_batches([5000, 3, 3], token_budget=100) == [[0], [1, 2]]


def test_oom_halves_the_batch_and_keeps_input_order() -> None:
    sizes: list[int] = []

    def fn(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        if len(batch) > 2:
            raise simulated_oom()
        return [i * 10 for i in batch]

    out = run_batches([[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10]], fn)
    assert out == [i * 10 for i in range(11)]
    assert sizes[:3] == [8, 4, 2]  # halved until it fits
    assert max(sizes[3:]) <= 2  # later batches are capped at the size that fit


def test_oom_on_a_single_item_raises_a_clear_error() -> None:
    def fn(batch: list[int]) -> list[int]:
        raise simulated_oom()

    with pytest.raises(OutOfMemoryError, match="single item"):
        run_batches([[0, 1]], fn)


def test_other_errors_are_not_swallowed() -> None:
    def fn(batch: list[int]) -> list[int]:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_batches([[0]], fn)


def test_is_out_of_memory_recognises_mps_and_cuda_messages() -> None:
    assert is_out_of_memory(simulated_oom())
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_encoder_survives_simulated_oom_with_identical_embeddings(tiny_config) -> None:
    encoder = DenseEncoder.load(tiny_config.models.dense_model, tiny_config.runtime)
    texts = [f"document number {i} " * (1 + i % 5) for i in range(23)]
    expected = encoder.encode(texts)

    real_encode = encoder.model.encode
    batch_sizes: list[int] = []

    def flaky_encode(sentences, **kwargs):
        batch_sizes.append(len(sentences))
        if len(sentences) > 3:
            raise simulated_oom()
        return real_encode(sentences, **kwargs)

    encoder.model.encode = flaky_encode
    try:
        got = encoder.encode(texts)
    finally:
        del encoder.model.encode
    assert max(batch_sizes) > 3 and batch_sizes[-1] <= 3
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_maxsim_multiplies_in_bfloat16_only_where_the_cpu_does_it_natively() -> None:
    zen4 = "flags : fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni"
    skylake = "flags : fpu sse2 avx2 avx512f avx512bw avx512_vnni"
    graviton3 = "Features : fp asimd sve bf16 i8mm"
    assert cpu_has_native_bf16(zen4) and cpu_has_native_bf16(graviton3)
    assert not cpu_has_native_bf16(skylake) and not cpu_has_native_bf16("")
    assert resolve_maxsim_dtype("auto", DeviceFacts(cpu_bf16=True)) == torch.bfloat16
    assert resolve_maxsim_dtype("auto", CPU) == torch.float32
    assert resolve_maxsim_dtype("float32", DeviceFacts(cpu_bf16=True)) == torch.float32
    assert resolve_maxsim_dtype("bfloat16", CPU) == torch.bfloat16
