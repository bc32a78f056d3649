"""Docs are code: every ```python block of README.md and docs/*.md runs, offline.

How a page's blocks run:

- One test per page. Its blocks run in order in one namespace (a later block may use what
  an earlier one made), in a fresh temporary folder as the working directory, with
  ``COLRANK_OFFLINE=1`` (the bundled MiniLM stands in for the hub models) and no progress
  bars. Top-level ``await`` works.
- A block says what it needs in an HTML comment on the line just before its fence:

  ``<!-- snippet: postgres -->``
      runs against the test session's embedded PostgreSQL; the block finds its URL in
      the variable ``url`` (skipped, like the other PostgreSQL tests, where no server can
      start).
  ``<!-- snippet: replicated -->``
      a primary and a streaming hot standby; ``replicated_url`` names both (libpq
      multi-host URL).
  ``<!-- snippet: spread -->``
      a coordinator and three shard servers; ``coordinator_url`` and ``shard_urls``.
  ``<!-- snippet: skip <reason> -->``
      not run; for the very few blocks that cannot run here (say why in the reason).

To add a need: give it a name, add it to ``NEEDS`` with what it puts in the namespace.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\s*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
PAGES = [
    page
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if FENCE.search(page.read_text(encoding="utf-8"))
]
NEED = re.compile(r"<!--\s*snippet:\s*(\w+)\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    """One ```python block: where it starts, its code, and what it declared it needs."""

    page: Path
    line: int
    code: str
    need: str | None = None
    reason: str = ""


def snippets(page: Path) -> list[Snippet]:
    """The page's python blocks, in order, with the need declared on the line before each."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        declared = NEED.search(before)
        need, reason = (declared.group(1), declared.group(2)) if declared else (None, "")
        out.append(Snippet(page, line, match.group(1), need, reason))
    return out


def _postgres(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"url": request.getfixturevalue("postgres_url")}


def _replicated(request: pytest.FixtureRequest) -> dict[str, Any]:
    from .conftest import multi_host_url

    return {"replicated_url": multi_host_url(*request.getfixturevalue("postgres_replicated"))}


def _spread(request: pytest.FixtureRequest) -> dict[str, Any]:
    coordinator, shards = request.getfixturevalue("postgres_spread")
    return {"coordinator_url": coordinator.url, "shard_urls": [s.url for s in shards]}


NEEDS: dict[str, Callable[[pytest.FixtureRequest], dict[str, Any]]] = {
    "postgres": _postgres,
    "replicated": _replicated,  # replicated_url: a primary and a hot standby, one URL
    "spread": _spread,  # coordinator_url and shard_urls: a coordinator and three shards
}
"""Need name -> what it adds to the page's namespace (it may skip the test)."""


def run(snippet: Snippet, namespace: dict[str, Any]) -> None:
    """Execute one block in ``namespace`` (top-level ``await`` allowed)."""
    page = snippet.page
    name = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{snippet.line}"
    code = compile(snippet.code, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_snippet_runs(page: Path, request, tmp_path, monkeypatch) -> None:
    blocks = snippets(page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLRANK_OFFLINE", "1")
    namespace: dict[str, Any] = {"__name__": f"snippets_{page.stem}"}
    for snippet in blocks:
        if snippet.need == "skip":
            assert snippet.reason, f"{page.name}:{snippet.line}: say why it is skipped"
            continue
        if snippet.need is not None:
            assert snippet.need in NEEDS, f"{page.name}:{snippet.line}: unknown need"
            namespace.update(NEEDS[snippet.need](request))
        run(snippet, namespace)


def test_the_runner_reads_needs_and_blocks(tmp_path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n```python\nx = 1\n```\n\n<!-- snippet: skip trains for hours -->\n"
        "```python\nraise SystemExit\n```\n\n```bash\nls\n```\n"
        "<!-- snippet: postgres -->\n```python\ny = url\n```\n"
    )
    found = snippets(page)
    assert [(s.line, s.need, s.reason) for s in found] == [
        (3, None, ""),
        (8, "skip", "trains for hours"),
        (16, "postgres", ""),
    ]
    namespace: dict[str, Any] = {}
    run(Snippet(page, 1, "import asyncio\nawait asyncio.sleep(0)\nz = 2\n"), namespace)
    assert namespace["z"] == 2
