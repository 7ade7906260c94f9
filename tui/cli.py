"""The ``musubi`` command: the TUI when run bare, otherwise one command against the engine.

Adding a command group (the extension point)
--------------------------------------------
Write ``tui/commands/<name>.py`` exposing ``cli_group``, a click command or group
(build it with :func:`tui.output.group` so its ``--help`` ends with examples and
the global options), and add one line to :data:`COMMANDS`: its name, module and the
one-line summary ``musubi --help`` shows.  Command modules are loaded lazily (click's
lazy-group pattern): ``musubi --help`` imports none of them and ``musubi usage record``
imports only ``tui.commands.usage``; a test checks each summary against the module.
Commands get the global options with ``@tui.output.pass_state`` and reach the engine
only via ``state.client()``; they print with ``tui.output.emit`` so ``--json`` works
the same everywhere.  Import textual/aiohttp/heavy libraries inside the command
function, never at module level.

A bare ``musubi`` opens the TUI from the root callback; ``tui.app`` is imported there
and nothing else the commands need, so the first frame is not delayed.

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
from tui.output import CWD_GONE, CliState, MusubiGroup, cwd_gone, example

# One line per command group: name -> (module exposing ``cli_group``, the first paragraph of its help,
# which ``musubi --help`` shortens the way click does; tests/cli checks it against the module).
COMMANDS: dict[str, tuple[str, str]] = {
    "engine": ("tui.commands.engine", "Start, stop and inspect the engine process (one per MUSUBI_HOME)."),
    "whoami": ("tui.commands.whoami", "Show who you are to the engine, with your roles and permissions."),
    "tenant": ("tui.commands.tenant", "Create, list, show, suspend and resume tenants."),
    "project": ("tui.commands.project", "Register repositories as projects of the tenant."),
    "role": ("tui.commands.role", "List, show, create and delete roles."),
    "member": ("tui.commands.member", "Bind users to roles in the tenant, or in one project of it."),
    "quota": ("tui.commands.quota", "Set and show usage limits."),
    "usage": ("tui.commands.usage", "Record, reserve and settle usage."),
    "audit": ("tui.commands.audit", "Read, verify, export and prune the audit log."),
    "models": ("tui.commands.models", "The model registry: prices per million tokens with their source and date, "
               "context windows, capability tiers; the tenant's allowed models; the router's choice for a task."),
    "cost": ("tui.commands.cost", "Estimate a run before it starts: exact token counts per file (estimates with a "
             "band where the provider publishes no tokenizer), cost low / expected / high, context fit and quota "
             "headroom per model."),
    "trace": ("tui.commands.trace", "Traceability: requirement → design → task → code → test, coverage and gaps."),
    "jobs": ("tui.commands.jobs", "Background jobs of the engine (indexing, later runs and syncs): list, show "
             "with progress, follow, cancel."),
    "index": ("tui.commands.index", "Index the project's code for search: only files whose content changed are "
              "chunked and embedded."),
    "search": ("tui.commands.search", "Search the project's code: dense (embeddings) and lexical (BM25) results, "
               "fused."),
    "spec": ("tui.commands.spec", "Work with specs (requirements, design, tasks) in the MUSUBI layout "
             "(storage/specs, storage/design, storage/tasks) or the Kiro layout (.kiro/specs/<feature>/)."),
    "context": ("tui.commands.context", "Pack the project's best code for a task into a token budget, with a "
                "manifest."),
    # orchestration (issue 12): agents and workflows as data
    "workflows": ("tui.commands.workflows", "The workflows you can run and estimate: shipped, from your config "
                  "folder and from the project's .musubi/."),
    "agents": ("tui.commands.agents", "The agents workflows use: role, task kind, tier, artefact, context pack "
               "and prompt."),
    # -- orchestration runs (issue 12) --
    "run": ("tui.commands.run", "Run a workflow (requirements, design, tasks, ...) on a feature, charged and "
            "audited, in the engine."),
    "runs": ("tui.commands.runs", "Orchestration runs: list, show with the step tree (estimated vs actual), "
             "follow, cancel, resume, answer approval gates, apply approved diffs, read the log."),
    # -- providers (issue 12)
    "providers": ("tui.commands.providers", "The engine's LLM providers (OpenAI, Azure OpenAI, Anthropic, "
                  "OpenAI-compatible, replay): what is configured and whether each answers."),
    # -- identity / SSO (docs/identity.md)
    "login": ("tui.commands.login", "Sign in through your identity provider (device code flow; works over SSH)."),
    "logout": ("tui.commands.logout", "Sign out: end your engine session and delete your saved tokens."),
    "sso": ("tui.commands.sso", "Map identity-provider groups and app roles to tenant roles; require SSO for a "
            "tenant."),
    "serve": ("tui.commands.serve", "Serve the workstation to SSH clients (keys mapped to users) or browsers "
              "(token or SAML sign-in)."),
    # -- integrations (issue 17) --
    "integrations": ("tui.commands.integrations", "Connect Jira, Azure DevOps, GitLab, GitHub, Slack and Teams: "
                     "settings per tenant, secrets kept outside the database, a connection test with the vendor's "
                     "own error text, pipeline status."),
    "sync": ("tui.commands.sync", "Sync the project's requirements (-> epics/features) and tasks (-> "
             "stories/issues) into SYSTEM."),
    # -- tutorials (issue 18) --
    "tutorial": ("tui.commands.tutorial", "Interactive tutorials in a throw-away sandbox: list them with your "
                 "progress, start or resume one, have the engine check a step, reset."),
    "tune": ("tui.commands.tune", "Fine-tuning: chat datasets from approved run artefacts trained at OpenAI or "
             "Azure OpenAI, and the local embedder adapted to the team's code."),
}


class LazyGroup(MusubiGroup):
    """The root group: each command module is imported the first time its command is needed.

    click's documented lazy-loading pattern ("Lazily Loading Subcommands"): ``list_commands``
    names the commands from :data:`COMMANDS` without importing them, ``get_command`` imports
    one module on demand, and the root help lists the summaries kept in the table.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            cmd = importlib.import_module(COMMANDS[cmd_name][0]).cli_group
            if not isinstance(cmd, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name][0]}.cli_group is not a click command")
            self.add_command(cmd, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)  # as click.Group.format_commands
        rows = [(n, short_help(n, limit) if n in COMMANDS else self.commands[n].get_short_help_str(limit))
                for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def short_help(name: str, limit: int) -> str:
    """The summary ``musubi --help`` shows for command ``name``, without importing its module."""
    # A throwaway Command shortens the text exactly as the real one would (public API only).
    return click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)


# Global options, accepted anywhere on the command line (see hoist_global_options).
GLOBAL_VALUE_OPTIONS = ("--home", "--tenant", "--as", "--project")
GLOBAL_FLAG_OPTIONS = ("--json",)
EXIT_INTERRUPTED = 130


@click.group(
    cls=LazyGroup,
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
@click.option("--fresh", is_flag=True,
              help="TUI only: ignore the context saved by the last session (mode, tenant, filters, tabs).")
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
    fresh: bool,
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
    return _launch_tui(home, tenant, as_user, color_system, no_animations, fresh)


def _launch_tui(home: str | None, tenant: str | None, as_user: str | None, color_system: str | None,
                no_animations: bool, fresh: bool = False) -> int:
    try:
        from tui.app import run as run_app  # lazy: textual is heavy and commands don't need it
    except ImportError as exc:
        raise MusubiError(
            f"the workstation (TUI) cannot start: tui.app is not importable ({exc}). "
            "Commands still work; see: musubi --help",
            code="tui_unavailable",
        ) from None
    return int(run_app(home, tenant, as_user, color_system, no_animations, fresh) or 0)


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
    probe = click.Context(top)  # get_command wants a context; a lazy group imports only what argv names
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
        sub = cmd.get_command(probe, tok) if isinstance(cmd, click.Group) else None
        if sub is not None:
            cmd = sub
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
        if isinstance(exc, FileNotFoundError) and cwd_gone():  # the folder it was run from was deleted
            return _report({"code": "cwd_gone", "message": CWD_GONE}, EXIT_ERROR, want_json, f"musubi: error: {CWD_GONE}")
        msg = (f"unexpected {type(exc).__name__}: {exc}. This is a bug in musubi; "
               "please report it with the command you ran.")
        return _report({"code": "internal", "message": msg}, EXIT_ERROR, want_json, f"musubi: error: {msg}")


def main() -> None:
    """Console-script entry point (``musubi``)."""
    sys.exit(run())


if __name__ == "__main__":
    main()
