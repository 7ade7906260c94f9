"""``musubi runs list|show|cancel|resume|approve|reject|logs|apply|output|retry|settings``: orchestration runs
(docs/runs.md)."""

from __future__ import annotations

from typing import Any

import click

from core.api import calls
from tui.output import CliState, emit, example, fields, group, line, pass_state, table, when

cli_group = group(
    "runs",
    "Orchestration runs: list, show with the step tree (estimated vs actual), follow, cancel, resume, answer "
    "approval gates, apply approved diffs, read the log.",
    "musubi runs list --state running,waiting",
    "musubi runs show r-3f9a0c1b2d4e --follow",
    "musubi runs approve r-3f9a0c1b2d4e --comment 'looks right'",
)


@cli_group.command("list", epilog=example("musubi runs list", "musubi runs list --state stopped --json"))
@click.option("--state", "states", metavar="S[,S...]", help="Only runs in these states (queued, running, waiting, "
              "stopped, interrupted, done, failed, cancelled).")
@click.option("--limit", metavar="N", default="50", show_default=True, help="At most N runs, newest first.")
@pass_state
def list_(state: CliState, states: str | None, limit: str) -> None:
    """List the runs you can see, newest first."""
    data = state.client().call(calls.runs(states, limit))

    def human(rows: Any) -> None:
        table(("ID", "WORKFLOW", "STATE", "TOKENS", "COST $", "GATE", "BY", "CREATED (UTC)"),
              ((r["id"], r["workflow"], r["state"], f"{r['tokens']:,}", r["cost_usd"], r["pending_gate"] or "",
                r["created_by"], when(r["created_at"])) for r in rows), empty="no runs")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi runs show r-3f9a0c1b2d4e", "musubi runs show r-3f9a0c1b2d4e --follow"))
@click.argument("run_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Stream progress until the run ends.")
@pass_state
def show(state: CliState, run_id: str, follow: bool) -> None:
    """Show run ID: state, steps with estimated vs actual tokens and cost, gates, artefacts."""
    data = state.client().call(calls.run_show(run_id))
    if follow:
        from tui.runfollow import follow as follow_run

        follow_run(state, dict(data))
        return

    def human(d: Any) -> None:
        fields(d, ["id", "workflow", "state", "stop_code", "reason", "project", "model", "created_by", "created_at",
                   "elapsed_s", "turns", "attempts", "pending_gate"])
        table(("STEP", "TITLE", "STATUS", "MODEL", "EST TOKENS", "TOKENS", "EST $", "COST $", "MS"),
              ((s["path"], s["title"], s["status"], s["model"] or "", _n(s["estimate"]["tokens"]),
                f"{s['input_tokens'] + s['output_tokens']:,}", s["estimate"]["cost_usd"] or "-", s["cost_usd"],
                "" if s["latency_ms"] is None else f"{s['latency_ms']:.0f}") for s in d["steps"]), empty="no steps")
        est = d["estimate"]
        line(f"total: {d['tokens']:,} tokens, ${d['cost_usd']} (estimated {_n(est['tokens'])} tokens, "
             f"${est['cost_usd'] or '-'})")
        for a in d["approvals"]:
            line(f"gate {a['gate']} ({a['state']}{', by ' + a['decided_by'] if a['decided_by'] else ''}): "
                 f"artefact {a['artefact']}, sha256 {a['shown_sha256']}")
            if a["state"] == "pending":
                line(a["shown"])
        for a in d["artefacts"]:
            line(f"artefact {a['id']} {a['kind']} {a['name']}: {a['state']} ({a['size']:,} bytes)")

    emit(state, data, human)


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _state_line(verb: str) -> Any:
    return lambda r: line(f"run {r['id']} {verb}: now {r['state']}.")


@cli_group.command(epilog=example("musubi runs cancel r-3f9a0c1b2d4e"))
@click.argument("run_id", metavar="ID")
@pass_state
def cancel(state: CliState, run_id: str) -> None:
    """Cancel run ID (a call already answered is still charged; one in flight is released)."""
    emit(state, state.client().call(calls.run_cancel(run_id)), _state_line("cancelled"))


@cli_group.command(epilog=example("musubi runs resume r-3f9a0c1b2d4e", "musubi runs resume r-3f9a0c1b2d4e "
                                  "--budget-usd 2"))
@click.argument("run_id", metavar="ID")
@click.option("--budget-tokens", metavar="N", help="Raise the run's token budget to N.")
@click.option("--budget-usd", metavar="D", help="Raise the run's dollar budget to D.")
@click.option("--max-turns", metavar="N", help="Raise the run's turn cap to N.")
@click.option("--max-step-turns", metavar="N", help="Raise the per-step turn cap to N.")
@pass_state
def resume(state: CliState, run_id: str, budget_tokens: str | None, budget_usd: str | None,
           max_turns: str | None, max_step_turns: str | None) -> None:
    """Resume a stopped, failed or interrupted run from its last completed step (nothing paid twice)."""
    data = state.client().call(calls.run_resume(run_id, budget_tokens, budget_usd, max_turns, max_step_turns))
    emit(state, data, _state_line("resumed"))


def _decide(state: CliState, run_id: str, decision: str, gate: str | None, comment: str | None,
            sha: str | None) -> None:
    data = state.client().call(calls.run_decide(run_id, decision, gate, comment, sha))
    emit(state, data, lambda d: line(f"gate {d['gate']} of run {run_id}: {d['decision']} by {d['by']}."))


_gate = click.option("--gate", metavar="G", help="The gate to answer (default: the run's pending one).")
_comment = click.option("--comment", metavar='"TEXT"', help="Why (kept with the decision).")
_sha = click.option("--sha256", "sha", metavar="HASH", help="The shown_sha256 you reviewed: refused if the gate "
                    "now shows something else.")


@cli_group.command(epilog=example("musubi runs approve r-3f9a0c1b2d4e", "musubi runs approve r-3f9a0c1b2d4e "
                                  "--changes --comment 'split the function'"))
@click.argument("run_id", metavar="ID")
@click.option("--changes", is_flag=True, help="Request changes instead of approving.")
@_gate
@_comment
@_sha
@pass_state
def approve(state: CliState, run_id: str, changes: bool, gate: str | None, comment: str | None,
            sha: str | None) -> None:
    """Approve run ID's pending gate (needs runs.approve); --changes requests changes."""
    _decide(state, run_id, "request_changes" if changes else "approve", gate, comment, sha)


@cli_group.command(epilog=example("musubi runs reject r-3f9a0c1b2d4e --comment 'wrong approach'"))
@click.argument("run_id", metavar="ID")
@_gate
@_comment
@_sha
@pass_state
def reject(state: CliState, run_id: str, gate: str | None, comment: str | None, sha: str | None) -> None:
    """Reject run ID's pending gate (needs runs.approve)."""
    _decide(state, run_id, "reject", gate, comment, sha)


@cli_group.command(epilog=example("musubi runs apply r-3f9a0c1b2d4e", "musubi runs apply r-3f9a0c1b2d4e "
                                  "--artefact a-0a1b2c3d4e5f"))
@click.argument("run_id", metavar="ID")
@click.option("--artefact", metavar="A", help="The diff artefact to apply (default: the run's one diff).")
@pass_state
def apply(state: CliState, run_id: str, artefact: str | None) -> None:
    """Apply an approved diff of run ID to the project (git apply semantics; refused whole on conflict)."""
    data = state.client().call(calls.run_apply(run_id, artefact))
    emit(state, data, lambda d: line(f"applied {d['artefact']}: {', '.join(d['files'])}"))


@cli_group.command(epilog=example("musubi runs logs r-3f9a0c1b2d4e", "musubi runs logs r-3f9a0c1b2d4e --after 40"))
@click.argument("run_id", metavar="ID")
@click.option("--after", metavar="N", help="Only lines after line N.")
@click.option("--limit", metavar="N", help="At most N lines (default 1,000).")
@pass_state
def logs(state: CliState, run_id: str, after: str | None, limit: str | None) -> None:
    """The run's log: states, steps, calls (tokens, cost, latency), gates, applies; never prompts or outputs."""
    data = state.client().call(calls.run_logs(run_id, after, limit))

    def human(d: Any) -> None:
        for ln in d["lines"]:
            line(f"{ln['n']:>5} {when(ln['ts'])} {ln['step'] or '-':>6} {ln['kind']:<5} {ln['text']}")

    emit(state, data, human)


# -- runs gaps (issue 12): a step's output so far, retry one step, the audit-text switch ------------


def _step_command(name: str, *examples: str) -> Any:
    """A ``runs NAME ID STEP`` command (ID a run, STEP a step path such as 2 or 3/1)."""

    def wrap(fn: Any) -> Any:
        fn = pass_state(fn)
        fn = click.argument("step", metavar="STEP")(fn)
        fn = click.argument("run_id", metavar="ID")(fn)
        return cli_group.command(name, epilog=example(*examples))(fn)

    return wrap


@_step_command("output", "musubi runs output r-3f9a0c1b2d4e 2", "musubi runs output r-3f9a0c1b2d4e 3/1 --json")
def output(state: CliState, run_id: str, step: str) -> None:
    """What step STEP (a path: 2, 3/1) of run ID has said so far: the live stream while it runs, else the record."""
    data = state.client().call(calls.run_output(run_id, step))

    def human(d: Any) -> None:
        how = {"live": "streaming now", "record": "recorded", "none": "nothing recorded"}.get(d["source"], d["source"])
        cut = f", the last {len(d['text']):,} of {d['end']:,} characters" if d["truncated"] else ""
        click.echo(f"step {d['step']} of run {d['run']} ({d['status']}; {how}{cut})", err=True)
        if d["text"]:
            line(d["text"])

    emit(state, data, human)


@_step_command("retry", "musubi runs retry r-3f9a0c1b2d4e 2", "musubi runs retry r-3f9a0c1b2d4e 3/1 --json")
def retry(state: CliState, run_id: str, step: str) -> None:
    """Run one failed, cancelled, stopped or interrupted STEP of run ID again with new calls (needs runs.start).

    Its completed calls are sent again as new attempts (they stay charged); nothing else of the run is
    sent again: done steps keep their output, other completed calls answer from the record.
    """
    data = state.client().call(calls.run_retry(run_id, step))

    def human(d: Any) -> None:
        again = f"; {len(d['superseded'])} completed call(s) of it are sent again" if d["superseded"] else ""
        line(f"run {d['run']['id']}: step {d['step']} runs again{again}; now {d['run']['state']}. Follow it with: "
             f"musubi runs show {d['run']['id']} --follow")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi runs settings", "musubi runs settings --audit-text on"))
@click.option("--audit-text", type=click.Choice(["on", "off"]), help="Put (redacted) prompt and output text into "
              "the run.call audit events of this tenant, or stop (needs tenant.manage; audited).")
@pass_state
def settings(state: CliState, audit_text: str | None) -> None:
    """Show this tenant's run settings, or change them."""
    client = state.client()
    data = client.call(calls.run_settings() if audit_text is None else calls.run_settings_set(audit_text == "on"))

    def human(d: Any) -> None:
        by = f" (set by {d['updated_by']} at {when(d['updated_at'])})" if d["updated_by"] else " (the default)"
        line(f"tenant {d['tenant']}: prompt and output text in the audit log: {'on' if d['audit_text'] else 'off'}"
             + by)

    emit(state, data, human)
