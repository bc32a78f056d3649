"""The public API is what __all__ says, and importing colrank pulls in no framework."""

from __future__ import annotations

import subprocess
import sys

import colrank

EXPECTED = {
    "ColbertEncoder",
    "ColrankConfig",
    "ColrankError",
    "ColrankIndex",
    "CorruptIndexError",
    "DenseEncoder",
    "DenseIndexConfig",
    "DimensionMismatchError",
    "Document",
    "DuplicateIdError",
    "EmptyCorpusError",
    "EmptyQueryError",
    "Hit",
    "IndexNotFoundError",
    "InvalidFilterError",
    "InvalidInputError",
    "ModelConfig",
    "ModelLoadError",
    "ModelMismatchError",
    "MuveraConfig",
    "OutOfMemoryError",
    "RuntimeConfig",
    "SearchConfig",
    "StoreUnavailableError",
    "TokenStoreConfig",
    "UnknownIdError",
    "UnsupportedStageError",
    "UntrustedModelError",
    "__version__",
    "maxsim_flat",
    "maxsim_ragged",
    "maxsim_scores",
}


def test_all_is_pinned() -> None:
    assert set(colrank.__all__) == EXPECTED
    for name in colrank.__all__:
        assert hasattr(colrank, name), name


def test_core_import_does_not_load_langchain_or_llama_index() -> None:
    code = "import sys, colrank; print(any(m.startswith(('langchain', 'llama_index')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


HIDE_FRAMEWORKS = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("langchain_core", "langchain", "llama_index"):
            raise ImportError(f"{name} is hidden for this test")
sys.meta_path.insert(0, Hide())
"""


def test_core_runs_with_the_frameworks_hidden(tiny_model_dir) -> None:
    code = (
        HIDE_FRAMEWORKS
        + f"""
from colrank import ColrankConfig, ColrankIndex
cfg = ColrankConfig(models={{"dense_model": {tiny_model_dir!r}, "colbert_model": {tiny_model_dir!r}}},
                    runtime={{"device": "cpu", "show_progress": False}})
index = ColrankIndex(cfg)
index.add(["Bread needs yeast.", "Paris is in France."], ids=["b", "p"])
print(index.search("yeast bread", k=1)[0].id)
try:
    import colrank.integrations.langchain
except ImportError as exc:
    print("face:", exc)
"""
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "b" and lines[1].startswith("face:")


def test_errors_keep_builtin_bases() -> None:
    assert issubclass(colrank.EmptyQueryError, ValueError)
    assert issubclass(colrank.UnknownIdError, KeyError)
    assert issubclass(colrank.IndexNotFoundError, FileNotFoundError)
    assert all(
        issubclass(getattr(colrank, n), colrank.ColrankError)
        for n in EXPECTED
        if n.endswith("Error") and n != "ColrankError"
    )
