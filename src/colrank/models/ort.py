"""ONNX Runtime backbones: the transformer exported once, run by ONNX Runtime (``colrank[onnx]``).

The transformer of a sentence-transformers / PyLate model (``model[0].auto_model``) is
exported with PyTorch's dynamo exporter (the older TorchScript exporter produced graphs
that were wrong on other shapes), with dynamic batch and sequence axes, and cached under
``$COLRANK_CACHE`` (default ``~/.cache/colrank``) in ``onnx/<key>/``. The key hashes the
model's folder and its weight, config and code files (path, size, modification time),
colrank's version and the exporter's versions, so a changed model or colrank exports
again. A model the exporter cannot trace raises :class:`~colrank.errors.ModelLoadError`
(remembered for the process: it is not traced again). ``int8`` is ONNX
Runtime's dynamic quantisation of the fp32 graph (weights int8, activations quantised on
the fly). Export writes to a temporary file and renames it: processes that export at the
same time never read half a file.

The heads (pooling, the ColBERT projection) stay in PyTorch: ONNX Runtime computes the
hidden states, colrank's :mod:`~colrank.models.backbone` code does the rest.

Example:
    >>> onnx_runtime_available() in (True, False)
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from colrank.errors import ModelLoadError
from colrank.models.loading import quiet_loading

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()
_failed_exports: dict[Path, str] = {}  # graph folder -> why its export failed


def onnx_runtime_available() -> bool:
    """Whether ONNX Runtime and the exporter's onnxscript are installed (``colrank[onnx]``)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnxscript"))


def cache_root() -> Path:
    """Where exported graphs are kept: ``$COLRANK_CACHE`` or ``~/.cache/colrank``."""
    env = os.environ.get("COLRANK_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "colrank"


def _model_fingerprint(folder: str) -> list[Any]:
    root = Path(folder)
    if not root.is_dir():
        return [folder]
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".safetensors", ".bin", ".json", ".py"}
    )
    return [folder] + [
        [str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime] for p in files
    ]


def graph_key(folder: str, input_names: tuple[str, ...]) -> str:
    """A cache key for one model's exported transformer."""
    import onnxruntime
    import onnxscript

    from colrank import __version__

    body = {
        "model": _model_fingerprint(folder),
        "inputs": list(input_names),
        "colrank": __version__,
        "torch": torch.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


class _HiddenStates(torch.nn.Module):
    """The transformer with named tensor inputs and its last hidden state as the one output."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return out.last_hidden_state


def _atomic_write(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".onnx")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def _errors_only(*names: str) -> Any:
    """Keep these loggers (``""``: the root logger) to errors inside the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def export_transformer(
    auto_model: torch.nn.Module, input_names: tuple[str, ...], target: Path
) -> None:
    """Export ``auto_model`` (float32, eval mode) to ``target`` with dynamic batch and length."""
    wrapper = _HiddenStates(auto_model).eval()
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in input_names)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=8192)
    shapes = {name: {0: batch, 1: seq} for name in input_names}

    def write(path: Path) -> None:
        chatter = io.StringIO()  # the exporter prints its steps and warns about axis names
        # torch's exporter logs absent torchvision ops and a failed trace's whole graph
        exporter = _errors_only("torch.onnx", "torch.export", "torch._export")
        with warnings.catch_warnings(), quiet_loading(), exporter:
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                program = _export()
        # the dynamo exporter writes large weights beside the graph unless told otherwise
        program.save(str(path), external_data=False)

    def _export() -> Any:
        return torch.onnx.export(
            wrapper,
            example,
            dynamo=True,
            input_names=list(input_names),
            output_names=["hidden"],
            dynamic_shapes=shapes,
            optimize=True,
            verbose=False,
        )

    _atomic_write(target, write)


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantisation of an fp32 graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _errors_only(""):  # its "consider pre-processing" note goes to the root logger
        _atomic_write(
            target,
            lambda path: quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8),
        )


def _why(exc: BaseException) -> str:
    """The first line of the innermost cause (the exporter wraps it in pages of advice)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        exc = inner
        seen.add(id(exc))
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def graph_for(transformer: Any, folder: str, precision: str) -> Path:
    """The cached ONNX graph of an ST ``Transformer`` module (exported on first use)."""
    names = tuple(n for n in INPUT_NAMES if n in transformer.tokenizer.model_input_names)
    directory = cache_root() / "onnx" / graph_key(folder, names)
    fp32 = directory / "model.onnx"
    wanted = fp32 if precision == "fp32" else directory / "model-int8.onnx"
    with _export_lock:
        if directory in _failed_exports:
            raise ModelLoadError(_failed_exports[directory])
        if not fp32.is_file():
            logger.info("exporting %s to ONNX (once; cached in %s)", folder, directory)
            auto_model = transformer.auto_model
            dtype = next(auto_model.parameters()).dtype
            device = next(auto_model.parameters()).device
            try:
                export_transformer(auto_model.float().cpu(), names, fp32)
            except OSError:
                raise  # the cache folder, not the model: nothing to remember
            except Exception as exc:
                _failed_exports[directory] = f"could not export {folder!r} to ONNX: {_why(exc)}"
                raise ModelLoadError(_failed_exports[directory]) from exc
            finally:
                auto_model.to(device=device, dtype=dtype)
            (directory / "source.json").write_text(json.dumps({"model": folder, "inputs": names}))
        if wanted != fp32 and not wanted.is_file():
            quantize_int8(fp32, wanted)
    return wanted


class OrtBackbone:
    """Hidden states of a transformer computed by ONNX Runtime.

    Args:
        transformer: the model's first module (a sentence-transformers ``Transformer``).
        folder: the model's local folder (for the cache key).
        precision: ``"fp32"`` or ``"int8"``.
        device: ``"cpu"`` or ``"cuda[:N]"`` (the CUDA execution provider when present).
        threads: intra-op threads (default: torch's thread count, for a fair comparison).
    """

    def __init__(
        self,
        transformer: Any,
        folder: str,
        precision: str = "fp32",
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = graph_for(transformer, folder, precision)
        self.precision = precision
        self.input_names = tuple(
            n for n in INPUT_NAMES if n in transformer.tokenizer.model_input_names
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads spin-wait between the ops of one run (a one-query forward measured 3.3-3.7
        # ms instead of 4.5-5.1 ms sleeping), and stop spinning when the run returns: left
        # spinning, they took the cores from the PyTorch work that follows (the heads,
        # MaxSim: a matrix product measured 3-10 ms instead of 1.5 ms)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            index = int(device.partition(":")[2] or 0)
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)

    def __call__(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(rows, length, hidden)`` float32 hidden states."""
        feed = {n: features[n].cpu().numpy().astype(np.int64, copy=False) for n in self.input_names}
        (hidden,) = self.session.run(["hidden"], feed)
        return torch.from_numpy(hidden)


__all__ = [
    "OrtBackbone",
    "cache_root",
    "export_transformer",
    "graph_for",
    "graph_key",
    "onnx_runtime_available",
    "quantize_int8",
]
