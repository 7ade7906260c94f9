"""Shared plumbing of the ``musubi`` command groups: options, engine access, output.

Every command module builds on these helpers so that all commands behave alike:
the global options land in one :class:`CliState` (``ctx.obj``), requests go
through :class:`core.client.EngineClient`, ``--json`` prints the engine's JSON
unchanged, and human output is a rich table or one short line.

rich is imported only inside the functions that draw tables, so ``musubi --help``
stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from core.paths import HomePaths

if TYPE_CHECKING:
    from core.client import EngineClient

T = TypeVar("T")

GLOBAL_HELP = (
    "Global options (before or after the command): --home DIR, --tenant NAME "
    "(env MUSUBI_TENANT), --as USER, --project NAME, --json."
)


@dataclass
class CliState:
    """The global options of one invocation, shared by every command as ``ctx.obj``."""

    home: str | None = None
    tenant: str | None = None
    as_user: str | None = None
    project: str | None = None
    json: bool = False

    def paths(self) -> HomePaths:
        """``$MUSUBI_HOME`` from ``--home``, else the environment, else the platform default."""
        return HomePaths.resolve(self.home)

    def client(self, *, autostart: bool = True) -> EngineClient:
        """A client for this invocation's identity; it starts the engine when none answers."""
        # Lazy: a bare `musubi` (the TUI) and --help need no client.
        from core.client import EngineClient
        from core.config import current_dir
        from core.identity.store import load_session
        from core.wire import Identity

        paths = self.paths()
        ident = Identity(tenant=self.tenant, as_user=self.as_user, project=self.project, cwd=current_dir(),
                         sso_session=load_session(paths.home))
        return EngineClient(paths, ident, autostart=autostart)

    def current_tenant(self) -> str:
        """The tenant the engine will use for this invocation."""
        from core.config import env_tenant

        return env_tenant(self.tenant) or "default"


pass_state = click.make_pass_decorator(CliState, ensure=True)


# -- command classes: every --help ends with the example and the global options -------------


def _with_globals(epilog: str | None) -> str:
    text = (epilog or "").rstrip()
    return (text + "\n\n" if text else "") + GLOBAL_HELP


class _GlobalsEpilog:
    """Mixin: the help ends with the example(s), then the global options."""

    epilog: str | None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved = self.epilog
        self.epilog = _with_globals(saved)
        try:
            super().format_epilog(ctx, formatter)  # type: ignore[misc]
        finally:
            self.epilog = saved


class MusubiCommand(_GlobalsEpilog, click.Command):
    """A click command whose help lists the global options after its example."""


class MusubiGroup(_GlobalsEpilog, click.Group):
    """A click group whose subcommands are :class:`MusubiCommand`, listed in definition order."""

    command_class = MusubiCommand

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # definition order reads better than alphabetical


MusubiGroup.group_class = MusubiGroup


def example(*lines: str) -> str:
    """An epilog of example command lines, kept verbatim by click."""
    return "\b\nExamples:\n" + "\n".join("  " + ln for ln in lines)


def group(name: str, help: str, *examples: str) -> MusubiGroup:
    """A command group with examples in its help."""
    return MusubiGroup(name=name, help=help, epilog=example(*examples) if examples else None)


# -- output -----------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    """Print JSON the same way for every command (2-space indent, UTF-8 kept)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def emit(state: CliState, data: T, human: Callable[[T], None]) -> None:
    """``--json`` prints ``data`` unchanged; otherwise ``human(data)`` renders it (typed by the call's answer)."""
    if state.json:
        print_json(data)
    else:
        human(data)


def line(text: str) -> None:
    """One short human line on stdout."""
    click.echo(text)


def warn(text: str) -> None:
    """A note on stderr (never mixed into JSON on stdout)."""
    click.echo(text, err=True)


def cell(value: Any) -> str:
    """Render one value for a table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else "-"
    return str(value)


def when(ts: str | None) -> str:
    """An engine timestamp (``2026-01-02T03:04:05.123456Z``) shortened for tables, still UTC."""
    if not ts:
        return "-"
    return ts[:19].replace("T", " ")


# Width used when stdout is not a terminal (pipes, files): wide enough that rows stay on one line.
PIPE_WIDTH = 200


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
    justify_right: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> None:
    """Print a rich table; an empty one prints ``empty`` instead.

    Columns in ``wrap`` (long free text) wrap when the terminal is narrow; the
    others (names, numbers, ids, times) never wrap, so they stay copyable.
    """
    rows = [list(r) for r in rows]
    if not rows:
        line(f"{title}: {empty}" if title else empty)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    t = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for c in columns:
        t.add_column(c, justify="right" if c in justify_right else "left", no_wrap=c not in wrap,
                     min_width=max(len(c), 16 if c in wrap else 0),
                     overflow="fold" if c in wrap else "ellipsis")
    for r in rows:
        t.add_row(*(cell(v) for v in r))
    console.print(t)


def fields(data: Mapping[str, Any], keys: Sequence[str] | None = None, *, title: str | None = None) -> None:
    """Print ``key: value`` pairs of one object as a two-column table."""
    keys = list(keys) if keys is not None else list(data)
    table(("FIELD", "VALUE"), ((k, data.get(k)) for k in keys), title=title, wrap=("VALUE",))


CWD_GONE = "the current folder no longer exists: cd to an existing folder and run the command again."


def cwd_gone() -> bool:
    """Whether the working directory was deleted under this process (``os.getcwd`` fails)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def working_dir() -> str:
    """The working directory; a deleted one is a clear error (code ``cwd_gone``), never a traceback."""
    from core.errors import MusubiError

    try:
        return os.getcwd()
    except FileNotFoundError:
        raise MusubiError(CWD_GONE, code="cwd_gone") from None


def abspath(path: str) -> str:
    """An absolute, symlink-resolved path: the engine runs elsewhere (cwd ``/``)."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(working_dir()) / p
    return str(p.resolve())


def confirm(state: CliState, what: str, yes: bool, consequence: str = "") -> None:
    """Ask before the destructive change ``what``; without a terminal (or with ``--json``) demand ``--yes``.

    A script that forgot ``--yes`` must neither hang on a prompt nor proceed
    silently, so it fails with a usage error (exit 2) that names the fix.
    Declining at the prompt exits 1 with nothing changed.
    """
    if yes:
        return
    if state.json or not sys.stdin.isatty():
        why = "--json was given" if state.json else "stdin is not a terminal"
        raise click.UsageError(f"refusing to {what} without confirmation ({why}); add --yes to proceed.")
    question = f"{what[:1].upper()}{what[1:]}?" + (f" {consequence}" if consequence else "")
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("aborted; nothing was changed.")
