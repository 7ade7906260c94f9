"""Every config example the docs show starts both the engine and the TUI.

The examples are extracted, not copied: each ```toml block of README.md and docs/*.md,
and each ``::`` literal block of a module docstring that talks about config.toml.  A
block under a heading about ``musubi.toml`` (a repository's trace settings) is checked
with the trace loader instead.  Each config.toml example is written to a temporary
config dir, then read by the engine-side loader, by the TUI's start path (``tui.app.run``
up to the point the terminal would be taken), and finally the app runs (Pilot) against
a real engine started with that config, which must list the example's models.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from core.config import ENVIRONMENT, load_config
from core.models.registry import load_registry, read_config
from tests.docs.engine_home import client, new_home, remove_home, running_engine

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```toml\n(.*?)^```", re.S | re.M)
_LITERAL = re.compile(r"::\n\n((?:(?:    .*)?\n)+)")


def _md_blocks(path: Path) -> list[tuple[str, str, str]]:
    """(where, kind, text) of each ```toml block; kind is "trace" under a musubi.toml heading."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()]
        heading = next((ln for ln in reversed(before.splitlines()) if ln.startswith("#")), "")
        line = before.count("\n") + 1
        kind = "trace" if "musubi.toml" in heading else "config"
        out.append((f"{path.relative_to(ROOT)}:{line}", kind, m.group(1)))
    return out


def _docstring_blocks(path: Path) -> list[tuple[str, str, str]]:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    kind = "config" if "config.toml" in doc else "trace" if "musubi.toml" in doc else None
    if kind is None:
        return []
    return [(f"{path.relative_to(ROOT)} docstring", kind, textwrap.dedent(m.group(1)))
            for m in _LITERAL.finditer(doc + "\n")]


# Pages whose TOML blocks are other files, checked by their own loaders' tests:
# agents.toml / workflows.toml (tests/orchestration/test_spec_loader.py).
_OTHER_FILES = {"workflows.md"}


def examples() -> list[tuple[str, str, str]]:
    found = _md_blocks(ROOT / "README.md")
    for md in sorted((ROOT / "docs").glob("*.md")):
        if md.name not in _OTHER_FILES:
            found += _md_blocks(md)
    for py in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]):
        found += _docstring_blocks(py)
    return found


EXAMPLES = examples()
CONFIG_EXAMPLES = [pytest.param(text, id=where) for where, kind, text in EXAMPLES if kind == "config"]


def test_the_extraction_finds_the_documented_examples() -> None:
    # A broken extractor would find nothing and pass everything below.
    where = {w.split(":")[0].split(" ")[0] for w, kind, _ in EXAMPLES if kind == "config"}
    assert {"docs/tui.md", "docs/models.md", "core/config.py", "core/models/registry.py"} <= where
    assert any(kind == "trace" for _, kind, _ in EXAMPLES)


@pytest.mark.parametrize("text", [pytest.param(t, id=w) for w, k, t in EXAMPLES if k == "trace"])
def test_trace_examples_load(text: str) -> None:
    import tomllib

    from core.trace.config import TraceConfig

    TraceConfig.from_dict(tomllib.loads(text).get("trace", {}), "musubi.toml")


def _model_ids(text: str) -> list[str]:
    import tomllib

    return [m["id"] for m in tomllib.loads(text).get("models", [])]


@pytest.mark.parametrize("text", CONFIG_EXAMPLES)
async def test_config_example_starts_engine_and_tui(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.app
    from tests.tui.conftest import wait_for

    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    path = cfg_dir / "config.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(cfg_dir))  # the engine started below inherits it
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)

    # The one loader, and the engine's registry built from what it read.
    load_config(path)
    reg = load_registry(read_config(path), path)
    for mid in _model_ids(text):
        assert mid in reg

    # The TUI's own start path, stopped where it would take over the terminal.
    paths = new_home()
    built: list[tui.app.MusubiApp] = []

    def capture(app: tui.app.MusubiApp) -> int:
        built.append(app)
        return 0

    monkeypatch.setattr(tui.app, "run_app", capture)
    assert tui.app.run(home=str(paths.home), no_animations=True) == 0
    app = built[0]
    assert app.ctx.config_file == path

    try:
        with running_engine(paths):
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_for(cast(Any, pilot), lambda: app.ctx.conn.name == "connected", "the TUI connected")
                listed: dict[str, Any] = client(paths).get("/v1/models")
                ids = {m["id"] for m in listed["models"]}
                assert set(_model_ids(text)) <= ids
                assert listed["config"] == str(path)
                await pilot.press("f1")  # a key map from the example is live: the help opens all the same
                await pilot.pause()
    finally:
        remove_home(paths)


def test_environment_table_is_documented() -> None:
    doc = (ROOT / "docs" / "tui.md").read_text(encoding="utf-8")
    section = doc.split("## Environment", 1)[1].split("\n## ", 1)[0]
    for name in ENVIRONMENT:
        assert f"`{name}`" in section, f"{name} is read but not documented in docs/tui.md 'Environment'"
