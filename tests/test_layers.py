"""The layer rules of DEVELOPERS.md: import-linter contracts, and what start-up paths load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("duckdb", "faiss", "torch", "sentence_transformers", "textual", "connectors")


def test_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # import-linter ends with "Contracts: N kept, 0 broken."; none kept would mean none were read.
    assert "0 broken" in proc.stdout and " 0 kept" not in proc.stdout, proc.stdout


def _loaded_after(stmt: str) -> set[str]:
    code = f"import sys, json\n{stmt}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_client_is_light() -> None:
    """Every CLI command goes through core.client: it must not drag in the engine's stack."""
    mods = _loaded_after("import core.client")
    assert not {m.split(".")[0] for m in mods} & {*HEAVY, "aiohttp", "cryptography"}


def test_engine_core_never_loads_ui() -> None:
    mods = _loaded_after("import core.engine.engine, core.engine.server")
    roots = {m.split(".")[0] for m in mods}
    assert "textual" not in roots and "tui" not in roots and "connectors" not in roots
    # ML stacks stay off the engine's start-up path.
    assert not roots & {"torch", "faiss", "sentence_transformers", "numpy", "bm25s", "Stemmer", "tree_sitter"}


def test_every_route_module_is_under_the_no_server_contract() -> None:
    """A new ``core/engine/routes_*.py`` must be listed in the import-linter contract that keeps
    route modules from importing the server (a module left out would not be checked)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = next(set(c["source_modules"]) for c in contracts if "never import the server" in c["name"])
    modules = {f"core.engine.{p.stem}" for p in (ROOT / "core" / "engine").glob("routes*.py")}
    assert modules <= listed, f"add to the contract in pyproject.toml: {sorted(modules - listed)}"
