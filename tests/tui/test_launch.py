"""The ``musubi`` entry point: bare invocations go straight to the TUI, everything else to the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tui.launch import TuiArgs, bare_tui_options


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSUBI_HOME", raising=False)
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], TuiArgs(None, None, None, None, False)),
        (["--home", "/h", "--tenant=acme"], TuiArgs("/h", "acme", None, None, False)),
        (["--as", "vera", "--color-system", "16", "--no-animations"], TuiArgs(None, None, "vera", "16", True)),
        (["--project", "webshop"], TuiArgs(None, None, None, None, False)),
    ],
)
def test_bare_invocations_open_the_tui(argv: list[str], expected: TuiArgs) -> None:
    assert bare_tui_options(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["quota", "status"],
        ["--help"],
        ["--json"],
        ["--version"],
        ["--color-system", "sepia"],  # the CLI names the bad choice
        ["--home"],  # missing value
        ["--home", "--tenant", "x"],
        ["--tenant", "acme", "member", "list"],
        ["--no-animations=yes"],
    ],
)
def test_everything_else_goes_to_the_cli(argv: list[str]) -> None:
    assert bare_tui_options(argv) is None


def test_environment_fills_home_and_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSUBI_HOME", "/env/home")
    monkeypatch.setenv("MUSUBI_TENANT", "acme")
    assert bare_tui_options(["--tenant", "beta"]) == TuiArgs("/env/home", "beta", None, None, False)


def test_the_launcher_imports_neither_click_nor_the_cli() -> None:
    code = "import sys, tui.launch; print(sorted(m for m in ('click', 'tui.cli', 'textual') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_commands_still_work_through_the_launcher() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['musubi', '--version']; import tui.launch as l; l.main()"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "musubi" in out.stdout
