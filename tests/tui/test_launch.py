"""The ``musubi`` entry point: a bare invocation opens the TUI through the lazy CLI, importing no command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs `musubi ARGS` in a fresh interpreter with tui.app replaced by a recorder, then prints
# what the TUI was started with and which modules the launch path loaded.
_PROBE = """
import json, sys, types
fake = types.ModuleType("tui.app")
seen = []
fake.run = lambda *a: seen.append(list(a)) or 0
sys.modules["tui.app"] = fake
import tui.cli as c
rc = c.run(sys.argv[1:])
print("PROBE", json.dumps({"rc": rc, "seen": seen, "modules": sorted(sys.modules)}))
"""


def _probe(*argv: str, env: dict[str, str] | None = None) -> dict[str, object]:
    p = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60, env=env)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("PROBE ")), None)
    assert line, p.stderr
    result: dict[str, object] = json.loads(line[6:])
    return result


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSUBI_HOME", raising=False)
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], [None, None, None, None, False, False]),
        (["--home", "/h", "--tenant=acme"], ["/h", "acme", None, None, False, False]),
        (["--as", "vera", "--color-system", "16", "--no-animations"], [None, None, "vera", "16", True, False]),
        (["--project", "webshop"], [None, None, None, None, False, False]),
        (["--fresh"], [None, None, None, None, False, True]),
    ],
)
def test_bare_invocations_open_the_tui_without_loading_any_command(argv: list[str], expected: list[object]) -> None:
    out = _probe(*argv)
    assert out["rc"] == 0 and out["seen"] == [expected]
    mods = set(out["modules"])  # type: ignore[call-overload]
    assert not {m for m in mods if m.startswith("tui.commands.")}
    # Nothing a command needs is loaded before the first frame: no client, no HTTP library.
    assert not mods & {"core.client", "core.lifecycle", "http.client", "aiohttp", "pydantic", "rich.table"}


def test_environment_fills_home_and_tenant() -> None:
    import os

    env = {**os.environ, "MUSUBI_HOME": "/env/home", "MUSUBI_TENANT": "acme"}
    assert _probe("--tenant", "beta", env=env)["seen"] == [["/env/home", "beta", None, None, False, False]]


@pytest.mark.parametrize("argv", [["--color-system", "sepia"], ["--home"], ["--no-animations=yes"]])
def test_bad_root_options_are_usage_errors_and_open_nothing(argv: list[str]) -> None:
    out = _probe(*argv)
    assert out["rc"] == 2 and out["seen"] == []


def test_the_former_launcher_module_still_runs_the_cli() -> None:
    # Installs made before the entry point moved run tui.launch:main.
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['musubi', '--version']; import tui.launch as l; l.main()"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "musubi" in out.stdout
