"""The command tree itself: help with examples, global options anywhere, usage errors, fast start."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from tui import cli as climod
from tui.cli import COMMANDS, hoist_global_options, root, short_help

from .helpers import REPO, run_musubi


def _all_commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        out.append(path)
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"{name} is listed but cannot be loaded"
                walk(sub, (*path, name))

    walk(root, ())
    return out


EXPECTED = {
    ("runs", "output"), ("runs", "retry"), ("runs", "settings"), ("providers", "stats"),  # runs gaps (issue 12)
    ("engine", "start"), ("engine", "stop"), ("engine", "status"), ("whoami",),
    ("tenant", "create"), ("tenant", "list"), ("tenant", "show"), ("tenant", "suspend"), ("tenant", "resume"),
    ("project", "add"), ("project", "list"), ("project", "remove"),
    ("role", "create"), ("role", "list"), ("role", "show"), ("role", "delete"),
    ("member", "add"), ("member", "list"), ("member", "remove"),
    ("quota", "set"), ("quota", "status"), ("quota", "remove"),
    ("usage", "record"), ("usage", "reserve"), ("usage", "settle"), ("usage", "release"),
    ("usage", "reservations"), ("usage", "history"),
    ("audit", "list"), ("audit", "verify"), ("audit", "export"), ("audit", "prune"), ("audit", "checkpoint"),
}


def test_every_issue_command_exists() -> None:
    assert set(_all_commands()) >= EXPECTED


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "musubi")
def test_help_has_an_example_and_the_global_options(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    rc = climod.run([*path, "--help"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Example" in out, out
    assert "musubi " + " ".join(path) in out, f"the example should show the command itself:\n{out}"
    assert "--json" in out and "before or after the command" in out


def test_every_command_module_is_registered() -> None:
    """A module in tui/commands/ that the root group does not list is a command nobody can reach."""
    import importlib
    import pkgutil

    import tui.commands

    on_disk = {
        importlib.import_module(f"tui.commands.{m.name}").cli_group.name
        for m in pkgutil.iter_modules(tui.commands.__path__)
    }
    with click.Context(root) as ctx:
        registered = set(root.list_commands(ctx))
    assert on_disk == registered


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_table_matches_each_module(name: str) -> None:
    """The lazy table names each module's ``cli_group`` and shows the summary its own help would."""
    import importlib

    module, _ = COMMANDS[name]
    cmd = importlib.import_module(module).cli_group
    assert cmd.name == name
    for limit in (45, 70, 100):
        assert short_help(name, limit) == cmd.get_short_help_str(limit)


_LOADED = (
    "import sys, json, tui.cli as c\n"
    "rc = c.run(sys.argv[1:])\n"
    "print('MODULES', rc, json.dumps(sorted(sys.modules)))\n"
)


def _modules_after_cli(*argv: str) -> tuple[int, set[str]]:
    p = subprocess.run([sys.executable, "-c", _LOADED, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("MODULES "))
    _, rc, mods = line.split(" ", 2)
    return int(rc), set(json.loads(mods))


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (("--help",), set()),
        (("usage", "record", "--help"), {"tui.commands.usage"}),
        (("--json", "quota", "status", "--help"), {"tui.commands.quota"}),
        (("member", "list", "--tenant", "acme", "--help"), {"tui.commands.member"}),
    ],
)
def test_cli_imports_only_the_command_it_runs(argv: tuple[str, ...], wanted: set[str]) -> None:
    rc, mods = _modules_after_cli(*argv)
    assert rc == 0
    commands = {m for m in mods if m.startswith("tui.commands.")} - {"tui.commands"}
    assert commands == wanted
    heavy = {"textual", "aiohttp", "pydantic", "duckdb", "rich", "tui.app", "core.client", "http.client"}
    assert {m.split(".")[0] for m in mods} & heavy == set() and not mods & heavy


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tenant", "list", "--json"], ["--json", "tenant", "list"]),
        (["--json", "tenant", "list"], ["--json", "tenant", "list"]),
        (["member", "list", "--tenant", "acme"], ["--tenant", "acme", "member", "list"]),
        (["member", "list", "--tenant=acme", "--as", "bob"], ["--tenant=acme", "--as", "bob", "member", "list"]),
        # root options keep their place and come before the hoisted ones (so later ones win)
        (["--home", "/h", "whoami", "--home", "/g"], ["--home", "/h", "--home", "/g", "whoami"]),
        # an option's value is never taken for a global option
        (["tenant", "suspend", "acme", "--reason", "--json"], ["tenant", "suspend", "acme", "--reason", "--json"]),
        (["role", "create", "r", "--description", "--tenant", "-p", "specs.read"],
         ["role", "create", "r", "--description", "--tenant", "-p", "specs.read"]),
        # a command's own option of the same name wins: member add --project is the binding's project
        (["member", "add", "bob", "--role", "viewer", "--project", "shop"],
         ["member", "add", "bob", "--role", "viewer", "--project", "shop"]),
        (["quota", "status", "--project", "shop"], ["--project", "shop", "quota", "status"]),
        # everything after a literal -- is left alone
        (["usage", "record", "--", "--json"], ["usage", "record", "--", "--json"]),
    ],
)
def test_hoist_global_options(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, tui.cli as c\n"
        "rc = c.run(['--help'])\n"
        "rc2 = c.run(['audit', 'checkpoint', '--help'])\n"
        "heavy = [m for m in ('textual', 'aiohttp', 'duckdb', 'rich', 'torch', 'faiss') if m in sys.modules]\n"
        "print('RESULT', rc, rc2, heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "RESULT 0 0 []" in p.stdout, p.stdout[-500:]


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuch"],
        ["tenant", "create"],
        ["quota", "set", "tokens", "5", "--per", "week"],
        ["quota", "set", "bananas", "5", "--per", "day"],
        ["usage", "record", "--model", "m", "--input-tokens", "-1", "--output-tokens", "0"],
        ["usage", "record", "--input-tokens", "1", "--output-tokens", "0"],
        ["audit", "export", "--format", "xml", "-o", "x"],
        ["audit", "list", "--limit", "0"],
        ["audit", "checkpoint", "--public-key", "AAAA"],
        ["--color-system", "million"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_exit_2_without_engine(argv: list[str]) -> None:
    # These are caught before any engine is needed: the home does not even exist.
    r = run_musubi(*argv, home="/tmp/mh-never-created")
    assert r.rc == 2, str(r)
    assert "Error:" in r.err and "Traceback" not in r.err
    r = run_musubi(*argv, "--json", home="/tmp/mh-never-created")
    assert r.rc == 2, str(r)
    body = json.loads(r.out)
    assert body["error"]["code"] == "usage" and body["error"]["exit_code"] == 2 and body["error"]["message"]


def test_bare_musubi_with_json_is_a_usage_error() -> None:
    r = run_musubi("--json", home="/tmp/mh-never-created")
    assert r.rc == 2 and "no --json" in r.err


def test_version() -> None:
    r = run_musubi("--version", home=None)
    assert r.rc == 0 and "musubi" in r.out


def test_bare_musubi_starts_the_tui_with_the_root_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls: list[tuple[object, ...]] = []
    fake = types.ModuleType("tui.app")

    def fake_run(*args: object) -> int:
        calls.append(args)
        return 0

    fake.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tui.app", fake)
    monkeypatch.delenv("MUSUBI_HOME", raising=False)
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)
    rc = climod.run(["--home", "/tmp/mh-x", "--tenant", "acme", "--as", "bob", "--color-system", "256", "--no-animations"])
    assert rc == 0
    assert calls == [("/tmp/mh-x", "acme", "bob", "256", True, False)]  # the last: --fresh (not given)


def test_bare_musubi_when_the_tui_is_not_importable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tui.app", None)  # makes `import tui.app` raise ImportError
    rc = climod.run([])
    err = capsys.readouterr().err
    assert rc == 1
    assert "tui.app is not importable" in err and "Traceback" not in err


def test_docs_show_every_command() -> None:
    doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [" ".join(p) for p in sorted(EXPECTED) if f"musubi {' '.join(p)}" not in doc]
    assert not missing, f"docs/cli.md has no example of: {missing}"
