"""The ``musubi`` command: the TUI when run bare, otherwise one command against the engine.

Adding a command group (the extension point)
--------------------------------------------
Write ``tui/commands/<name>.py`` exposing ``cli_group``, a click command or group
(build it with :func:`tui.output.group` so its ``--help`` ends with examples and
the global options), and add one line to :data:`COMMAND_MODULES`.  Commands get
the global options with ``@tui.output.pass_state`` and reach the engine only via
``state.client()``; they print with ``tui.output.emit`` so ``--json`` works the
same everywhere.  Keep module import light: every module is imported to build
``musubi --help``, so import textual/aiohttp/heavy libraries inside the command
function, never at module level.

Exit codes: 0 ok, 1 error, 2 usage (bad arguments, click usage errors),
3 quota exceeded, 4 permission denied, 5 verification failed.  Errors never
show a traceback: :func:`run` turns every exception into a message on stderr,
and with ``--json`` also into ``{"error": {...}}`` on stdout.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from core.errors import EXIT_ERROR, EXIT_USAGE, MusubiError
from tui.output import CliState, MusubiGroup, example

# One line per command group; each module exposes ``cli_group``.
COMMAND_MODULES: list[str] = [
    "tui.commands.engine",
    "tui.commands.whoami",
    "tui.commands.tenant",
    "tui.commands.project",
    "tui.commands.role",
    "tui.commands.member",
    "tui.commands.quota",
    "tui.commands.usage",
    "tui.commands.audit",
    "tui.commands.models",
    "tui.commands.cost",
    "tui.commands.trace",
    "tui.commands.spec",
]

# Global options, accepted anywhere on the command line (see hoist_global_options).
GLOBAL_VALUE_OPTIONS = ("--home", "--tenant", "--as", "--project")
GLOBAL_FLAG_OPTIONS = ("--json",)
EXIT_INTERRUPTED = 130


@click.group(
    cls=MusubiGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=example(
        "musubi                          # open the workstation (TUI)",
        "musubi quota status",
        "musubi audit verify --json",
        "musubi --tenant acme member list",
        "musubi member list --tenant acme   # global options work after the command too",
    ),
)
@click.option("--home", metavar="DIR", envvar="MUSUBI_HOME", show_envvar=True,
              help="Musubi home (database, socket, logs). Default: the platform's user data dir.")
@click.option("--tenant", metavar="NAME", envvar="MUSUBI_TENANT", show_envvar=True,
              help="Tenant to act in. Default: 'default'.")
@click.option("--as", "as_user", metavar="USER",
              help="Act as another user (needs the 'impersonate' permission; audited with both names).")
@click.option("--project", metavar="NAME",
              help="Project to act in. Default: the registered project containing the current directory.")
@click.option("--json", "json_out", is_flag=True, help="Print machine-readable JSON (stable; see docs/cli.md).")
@click.option("--color-system", type=click.Choice(["truecolor", "256", "16", "none"]), default=None,
              help="TUI only: force a colour system (auto-detected otherwise).")
@click.option("--no-animations", is_flag=True, help="TUI only: turn off animations (useful over slow SSH).")
@click.version_option(package_name="musubi-workstation", prog_name="musubi")
@click.pass_context
def root(
    ctx: click.Context,
    home: str | None,
    tenant: str | None,
    as_user: str | None,
    project: str | None,
    json_out: bool,
    color_system: str | None,
    no_animations: bool,
) -> int | None:
    """Musubi Workstation: spec-driven development with AI agents.

    Run without a command to open the full-screen workstation; with a command,
    talk to the engine (started on demand) and print a table or --json.
    """
    ctx.obj = CliState(home=home, tenant=tenant, as_user=as_user, project=project, json=json_out)
    if ctx.invoked_subcommand is not None:
        return None
    if json_out:
        raise click.UsageError("the workstation (TUI) has no --json output; give a command, e.g. musubi quota status --json.")
    return _launch_tui(home, tenant, as_user, color_system, no_animations)


def _launch_tui(home: str | None, tenant: str | None, as_user: str | None, color_system: str | None,
                no_animations: bool) -> int:
    try:
        from tui.app import run as run_app  # lazy: textual is heavy and commands don't need it
    except ImportError as exc:
        raise MusubiError(
            f"the workstation (TUI) cannot start: tui.app is not importable ({exc}). "
            "Commands still work; see: musubi --help",
            code="tui_unavailable",
        ) from None
    return int(run_app(home, tenant, as_user, color_system, no_animations) or 0)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        cmd = importlib.import_module(name).cli_group
        root.add_command(cmd)


_load_commands()


# -- global options anywhere ------------------------------------------------------------------


def _option_of(cmd: click.Command, name: str) -> click.Parameter | None:
    for p in cmd.params:
        if isinstance(p, click.Option) and (name in p.opts or name in p.secondary_opts):
            return p
    return None


def hoist_global_options(argv: Sequence[str], top: click.Group | None = None) -> list[str]:
    """Move global options given after a subcommand to just before it.

    click binds an option to the command it follows, so ``musubi tenant list --json``
    would be a usage error.  The issue asks that ``--home/--tenant/--as/--project/--json``
    work before or after the subcommand; rather than declaring them on every
    command we walk the argv with click's own command tree and move them in front
    of the first subcommand.  The walk knows which options of each command take a
    value, so an option's value is never mistaken for a global option, and it
    stops at a literal ``--`` (everything after it is an argument).  A command
    that defines an option of the same name keeps it (``member add --project``
    names the binding's project; use ``musubi --project P member add`` for the
    context project).
    """
    top = top or root
    head: list[str] = []  # tokens before the first subcommand (root options)
    hoisted: list[str] = []
    tail: list[str] = []
    cmd: click.Command = top
    out = head
    i = 0
    args = list(argv)
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        name, eq, _ = tok.partition("=")
        if cmd is not top and name in GLOBAL_VALUE_OPTIONS + GLOBAL_FLAG_OPTIONS and _option_of(cmd, name) is None:
            if name in GLOBAL_VALUE_OPTIONS and not eq:
                hoisted.extend(args[i:i + 2])
                i += 2
            else:
                hoisted.append(tok)
                i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            out.append(tok)
            i += 1
            opt = _option_of(cmd, name)
            if isinstance(opt, click.Option) and not opt.is_flag and not opt.count and not eq and len(name) == len(tok):
                n = max(opt.nargs, 1)
                out.extend(args[i:i + n])
                i += n
            continue
        if isinstance(cmd, click.Group) and tok in cmd.commands:
            cmd = cmd.commands[tok]
            out = tail
        out.append(tok)
        i += 1
    return head + hoisted + tail


# -- the entry point --------------------------------------------------------------------------


def _report(exc_body: dict[str, Any], exit_code: int, want_json: bool, human: str | None = None) -> int:
    """Errors: a message on stderr; with --json also ``{"error": {...}}`` on stdout."""
    if want_json:
        click.echo(json.dumps({"error": {**exc_body, "exit_code": exit_code}}, ensure_ascii=False, default=str))
    if human is not None:
        click.echo(human, err=True)
    return exit_code


def _wants_json(argv: Sequence[str]) -> bool:
    for tok in argv:
        if tok == "--":
            return False
        if tok == "--json":
            return True
    return False


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``musubi`` with ``argv`` and return the exit code (never raises, never a traceback)."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    want_json = _wants_json(args)
    try:
        rv = root.main(args=args, prog_name="musubi", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except MusubiError as exc:
        return _report(exc.to_dict(), exc.exit_code, want_json, f"musubi: error: {exc.message}")
    except click.UsageError as exc:
        if want_json:
            _report({"code": "usage", "message": exc.format_message()}, EXIT_USAGE, True)
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        code = exc.exit_code if exc.exit_code else EXIT_ERROR
        return _report({"code": "error", "message": exc.format_message()}, code, want_json,
                       f"musubi: error: {exc.format_message()}")
    except click.Abort:
        return _report({"code": "aborted", "message": "aborted"}, EXIT_ERROR, want_json, "musubi: aborted.")
    except KeyboardInterrupt:
        return _report({"code": "interrupted", "message": "interrupted"}, EXIT_INTERRUPTED, want_json,
                       "musubi: interrupted.")
    except BrokenPipeError:
        # stdout closed early (e.g. `musubi audit list | head`): not an error worth a message.
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # the last line of defence: a clear message instead of a traceback
        msg = (f"unexpected {type(exc).__name__}: {exc}. This is a bug in musubi; "
               "please report it with the command you ran.")
        return _report({"code": "internal", "message": msg}, EXIT_ERROR, want_json, f"musubi: error: {msg}")


def main() -> None:
    """Console-script entry point (``musubi``)."""
    sys.exit(run())


if __name__ == "__main__":
    main()
