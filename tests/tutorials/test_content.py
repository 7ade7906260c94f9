"""Tutorials refer only to what exists: CLI commands that parse, modes, engine GET routes, binding ids.

The TUI engineer's Pilot replay (tests/tui) presses each key and runs each palette action in the
app; this module checks the references themselves, without a terminal.
"""

from __future__ import annotations

import re

import click
import pytest

from tui.cli import hoist_global_options, root
from tui.screens.bindings import all_binding_ids
from tui.screens.modes import BY_NAME
from tutorials.loader import load_all
from tutorials.model import Check, CliStep, StateStep, substitute

NAMES = {"tenant": "tut-ann-demo", "project": "shop", "path": "/tmp/sandbox/shop", "user": "ann",
         "run": "r-0123456789ab", "exports": "/tmp/home/exports"}
TUTORIALS = load_all()


def parse_argv(argv: list[str]) -> click.Command:
    """The command ``musubi ARGV`` runs, parsed by the real click tree (UsageError when it does not parse)."""
    args = hoist_global_options(argv)
    ctx = root.make_context("musubi", list(args))
    cmd: click.Command = root
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            break
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return cmd


def commands() -> list[tuple[str, list[str]]]:
    out = []
    for t in TUTORIALS.values():
        for s in t.steps:
            if s.kind == "cli":
                out.append((f"{t.id}/{s.id}/command", substitute(list(s.command), NAMES)))
            for i, argv in enumerate(s.solution.argv):
                out.append((f"{t.id}/{s.id}/solution{i}", substitute(list(argv), NAMES)))
    return out


def checks() -> list[tuple[str, Check]]:
    out = []
    for t in TUTORIALS.values():
        for s in t.steps:
            if isinstance(s, (CliStep, StateStep)) and s.check is not None:
                out += [(f"{t.id}/{s.id}/{i}", c) for i, c in enumerate([s.check, *s.also])]
    return out


@pytest.mark.parametrize(("where", "argv"), commands(), ids=[w for w, _ in commands()])
def test_every_command_parses(where: str, argv: list[str]) -> None:
    cmd = parse_argv(argv)
    assert not isinstance(cmd, click.Group), f"{where}: {argv} names a group, not a command"


def test_the_parser_refuses_what_does_not_exist() -> None:
    with pytest.raises(click.UsageError):
        parse_argv(["tenant", "shwo"])
    with pytest.raises(click.UsageError):
        parse_argv(["quota", "set", "tokens", "1", "--pre", "day"])


def test_every_mode_exists() -> None:
    modes = [(t.id, s.mode) for t in TUTORIALS.values() for s in t.steps if s.kind == "mode"]
    assert modes and all(m in BY_NAME for _t, m in modes), modes


def test_every_key_and_palette_action_is_a_binding() -> None:
    ids = all_binding_ids()
    palette = [(t.id, s.action) for t in TUTORIALS.values() for s in t.steps if s.kind == "palette"]
    palette += [(t.id, s.solution.palette) for t in TUTORIALS.values() for s in t.steps if s.solution.palette]
    assert palette and [p for p in palette if p[1] not in ids] == []


@pytest.mark.parametrize(("where", "check"), checks(), ids=[w for w, _ in checks()])
def test_every_check_reads_an_engine_get_route(where: str, check: Check) -> None:
    from core.engine.server import all_routes

    path = substitute(check.route, NAMES)
    gets = [r for r in all_routes() if r.method == "GET"]

    def matches(pattern: str) -> bool:
        rx = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: m[2][1:] if m[2] else "[^/]+", pattern)
        return re.fullmatch(rx, path) is not None

    hit = [r for r in gets if matches(r.path)]
    assert hit, f"{where}: no GET route matches {path}"
    assert not path.startswith(("/v1/events", "/v1/tutorials")) and not path.endswith("/export")


def test_package_data_ships_content_sample_and_replies() -> None:
    """A fresh install has every tutorial file, the whole sample project and the recorded replies.

    setuptools expands the ``package-data`` globs with ``glob(recursive=True)``, which skips hidden
    names unless a pattern spells them (the sample's ``.musubi/``): the same expansion here."""
    import glob
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tutorials"]
    pkg = root / "tutorials"
    shipped = {p for pat in patterns for p in glob.glob(pat, root_dir=pkg, recursive=True) if (pkg / p).is_file()}
    wanted = {str(p.relative_to(pkg)) for d in ("content", "sample", "replay") for p in (pkg / d).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts}
    assert wanted and wanted <= shipped, sorted(wanted - shipped)


def test_every_key_step_names_a_bound_key() -> None:
    from tui.screens.bindings import all_bindings

    bound = {k.strip() for b in all_bindings().values() for k in b.key.split(",")}
    keys = [(t.id, s.key) for t in TUTORIALS.values() for s in t.steps if s.kind == "key"]
    assert keys and [k for k in keys if k[1] not in bound] == []
