"""Importing the TUI must not pull the heavy ML stack or the database into the process."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("duckdb", "faiss", "torch", "sentence_transformers", "connectors")
# Not forbidden by the layer rules, but kept off the start-up path on purpose (each costs 100+ ms).
LAZY = ("pydantic", "aiohttp", "tui.screens.admin.screen", "core.client", "http.client", "tomllib")


def _modules_after(code: str) -> set[str]:
    """The modules that running ``code`` adds to a fresh interpreter.

    Only what ``code`` adds: under ``make cov`` coverage starts at interpreter start-up and
    brings its own imports (tomllib among them), which are no doing of the TUI.
    """
    prologue = "import sys; _before = set(sys.modules)\n"
    epilogue = "\nimport json; print(json.dumps(sorted(set(sys.modules) - _before)))"
    out = subprocess.run(
        [sys.executable, "-c", prologue + code + epilogue], capture_output=True, text=True, check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_tui_app_loads_no_heavy_modules() -> None:
    loaded = _modules_after("import tui.app")
    assert "textual.app" in loaded  # the check really ran the import
    bad = [m for m in FORBIDDEN + LAZY if m in loaded or any(x.startswith(m + ".") for x in loaded)]
    assert bad == []


def test_all_screens_together_stay_off_the_forbidden_list() -> None:
    loaded = _modules_after("import tui.screens.bindings as r; r.all_bindings()")
    assert "tui.screens.admin.audit" in loaded
    bad = [m for m in FORBIDDEN if m in loaded or any(x.startswith(m + ".") for x in loaded)]
    assert bad == []
