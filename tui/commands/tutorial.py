"""``musubi tutorial list|show|start|check|done|skip|reset``: the tutorials from a shell (docs/tutorials.md).

The Tutorials screen (mode 5) is the main way to take a tutorial; these commands are for the
CLI-only parts and for people without the TUI.  Each step's ``cli`` command runs against the
sandbox tenant (``--tenant tut-...``) from the sandbox folder the start prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.errors import EXIT_ERROR
from tui.output import CliState, emit, example, group, line, pass_state, table, warn

if TYPE_CHECKING:
    from core.api.tutorials import Checked, Progress, ResetDone, Started, StepDone, TutorialShown

cli_group = group(
    "tutorial",
    "Interactive tutorials in a throw-away sandbox: list them with your progress, start or resume one, have the "
    "engine check a step, reset.",
    "musubi tutorial list",
    "musubi tutorial start first-steps",
    "musubi tutorial check ears",
    "musubi tutorial reset ears --json",
)


def _progress_line(p: Progress) -> str:
    done = len(p["done"]) + len(p["skipped"])
    return f"{p['tutorial']}: {p['state'].replace('_', ' ')}, {done}/{p['total']} steps"


def _current(state: CliState, tutorial: str) -> None:
    """The current step's text, command and how to finish it (human output only)."""
    d: TutorialShown = state.client().call(calls.tutorial_show(tutorial))
    p = d["progress"]
    step = next((s for s in d["steps"] if s["id"] == p["current"]), None)
    if step is None:
        line("all steps done." if p["state"] == "done" else "no step left.")
        return
    line(f"\nstep {step['id']} ({step['kind']}): {step['title']}")
    line(step["body"].rstrip())
    if step["command"]:
        line("run:  musubi " + " ".join(_quote(a) for a in step["command"]))
    if step["check"] is not None:
        line(f"then: musubi tutorial check {tutorial} {step['id']}")
    elif step["kind"] == "cli":
        line(f"then: musubi tutorial done {tutorial} {step['id']}")
    else:
        line(f"(a {step['kind']} step: do it in the workstation's Tutorials screen, or skip it with "
             f"musubi tutorial skip {tutorial} {step['id']})")
    if step["hint"]:
        line(f"hint: {step['hint']}")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@cli_group.command("list", epilog=example("musubi tutorial list", "musubi tutorial list --json"))
@pass_state
def list_(state: CliState) -> None:
    """The tutorials with your progress in each."""
    data = state.client().call(calls.tutorials())

    def human(rows: Any) -> None:
        table(("ID", "TITLE", "STATE", "STEPS", "CURRENT", "SANDBOX"),
              ((r["id"], r["title"], r["progress"]["state"].replace("_", " "),
                f"{len(r['progress']['done']) + len(r['progress']['skipped'])}/{r['steps']}",
                r["progress"]["current"] or "", (r["progress"]["sandbox"] or {}).get("tenant", ""))
               for r in rows), empty="no tutorials installed")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tutorial show ears", "musubi tutorial show ears --json"))
@click.argument("tutorial", metavar="ID")
@pass_state
def show(state: CliState, tutorial: str) -> None:
    """Every step of tutorial ID with its state, then the current step in full."""
    data = state.client().call(calls.tutorial_show(tutorial))

    def human(d: TutorialShown) -> None:
        line(f"{d['title']} (version {d['version']}): {d['summary']}")
        table(("STEP", "KIND", "TITLE", "STATE"), ((s["id"], s["kind"], s["title"], s["state"]) for s in d["steps"]))
        line(_progress_line(d["progress"]))
        if d["progress"]["restarted"]:
            line("changed since you did them: " + ", ".join(d["progress"]["restarted"]))
        _current(state, tutorial)

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tutorial start first-steps", "musubi tutorial start ears --json"))
@click.argument("tutorial", metavar="ID")
@pass_state
def start(state: CliState, tutorial: str) -> None:
    """Start tutorial ID in a fresh sandbox, or resume it where you left off."""
    data = state.client().call(calls.tutorial_start(tutorial))

    def human(d: Started) -> None:
        sb = d["sandbox"]
        line(f"{'resumed' if d['resumed'] else 'started'} {tutorial}: sandbox tenant {sb['tenant']}, "
             f"project {sb['project']} in {sb['path']}")
        if d["completed_now"]:
            line("already done: " + ", ".join(d["completed_now"]))
        line(_progress_line(d["progress"]))
        line(f"work in the sandbox: cd {_quote(sb['path'])}  (and pass --tenant {sb['tenant']})")
        _current(state, tutorial)

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tutorial check ears", "musubi tutorial check ears lint-fixed --json"))
@click.argument("tutorial", metavar="ID")
@click.argument("step", metavar="[STEP]", required=False)
@pass_state
@click.pass_context
def check(ctx: click.Context, state: CliState, tutorial: str, step: str | None) -> None:
    """Have the engine check STEP (default: the current one) against your sandbox. Exit 1 when it does not hold yet."""
    step = step or _current_id(state, tutorial)
    data = state.client().call(calls.tutorial_check(tutorial, step))

    def human(d: Checked) -> None:
        line(f"{'✓' if d['ok'] else '✗'} {d['step']}: {d['detail']}")
        if d["completed_now"]:
            line("already done too: " + ", ".join(d["completed_now"]))
        line(_progress_line(d["progress"]))
        if d["ok"]:
            _current(state, tutorial)

    emit(state, data, human)
    if not data["ok"]:
        ctx.exit(EXIT_ERROR)


def _current_id(state: CliState, tutorial: str) -> str:
    p = state.client().call(calls.tutorial_progress(tutorial))
    if p["current"] is None:
        raise click.UsageError(f"tutorial {tutorial} has no step left; name one, or start again: "
                               f"musubi tutorial start {tutorial}")
    return p["current"]


def _mark(state: CliState, tutorial: str, d: StepDone) -> None:
    line(f"{d['step']}: {d['state']}")
    if d["completed_now"]:
        line("already done too: " + ", ".join(d["completed_now"]))
    line(_progress_line(d["progress"]))
    _current(state, tutorial)


@cli_group.command(epilog=example("musubi tutorial done first-steps engine"))
@click.argument("tutorial", metavar="ID")
@click.argument("step", metavar="STEP")
@pass_state
def done(state: CliState, tutorial: str, step: str) -> None:
    """Report STEP done (steps the engine cannot check: a command you ran, a key, a screen, a palette action)."""
    data = state.client().call(calls.tutorial_complete(tutorial, step))
    emit(state, data, lambda d: _mark(state, tutorial, d))


@cli_group.command(epilog=example("musubi tutorial skip first-steps", "musubi tutorial skip ears lint --json"))
@click.argument("tutorial", metavar="ID")
@click.argument("step", metavar="[STEP]", required=False)
@pass_state
def skip(state: CliState, tutorial: str, step: str | None) -> None:
    """Skip STEP (default: the current one)."""
    step = step or _current_id(state, tutorial)
    data = state.client().call(calls.tutorial_skip(tutorial, step))
    emit(state, data, lambda d: _mark(state, tutorial, d))


@cli_group.command(epilog=example("musubi tutorial reset ears", "musubi tutorial reset ears --json"))
@click.argument("tutorial", metavar="ID")
@pass_state
def reset(state: CliState, tutorial: str) -> None:
    """Clean tutorial ID's sandbox (folder deleted, tenant suspended) and forget your progress in it."""
    data = state.client().call(calls.tutorial_reset(tutorial))

    def human(d: ResetDone) -> None:
        if d["cleaned"]:
            line(f"cleaned sandbox {d['cleaned']['tenant']} ({d['cleaned']['path']} deleted)")
        else:
            warn("no sandbox to clean.")
        line(f"{tutorial}: progress forgotten; start again with: musubi tutorial start {tutorial}")

    emit(state, data, human)
