"""``musubi jobs list|show|cancel``: the engine's background jobs (docs/jobs.md)."""

from __future__ import annotations

from typing import Any

import click

from core.api.calls import path_segment
from tui.output import CliState, emit, example, fields, group, line, pass_state, table, when

STATES = ("queued", "running", "cancelling", "done", "failed", "cancelled", "interrupted")

cli_group = group(
    "jobs",
    "Background jobs of the engine (indexing, later runs and syncs): list, show with progress, follow, "
    "cancel. Jobs keep running when the terminal goes.",
    "musubi jobs list --state running",
    "musubi jobs show j-6c1f0e2a9b3d --follow",
    "musubi jobs cancel j-6c1f0e2a9b3d --json",
)


def _progress(j: dict[str, Any]) -> str:
    from tui.follow import progress_text

    return progress_text(j)


@cli_group.command("list", epilog=example("musubi jobs list", "musubi jobs list --state running,queued --kind index"))
@click.option("--state", "states", metavar="S[,S...]", help=f"Only jobs in these states: {', '.join(STATES)}.")
@click.option("--kind", metavar="KIND", help="Only jobs of this kind (e.g. index).")
@click.option("--limit", metavar="N", default="50", show_default=True,
              help="At most N jobs (1 to 1,000), newest first.")
@pass_state
def list_(state: CliState, states: str | None, kind: str | None, limit: str) -> None:
    """List the tenant's jobs that you can see, newest first."""
    query = {k: v for k, v in (("state", states), ("kind", kind), ("limit", limit)) if v}
    data = state.client().get("/v1/jobs", query)

    def human(rows: list[dict[str, Any]]) -> None:
        table(("ID", "KIND", "STATE", "PROGRESS", "PROJECT", "BY", "CREATED (UTC)"),
              ((r["id"], r["kind"], r["state"], _progress(r), r["project"], r["created_by"], when(r["created_at"]))
               for r in rows), empty="no jobs")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi jobs show j-6c1f0e2a9b3d", "musubi jobs show j-6c1f0e2a9b3d --follow"))
@click.argument("job_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Show a progress bar until the job ends (exit 0 only when done).")
@pass_state
def show(state: CliState, job_id: str, follow: bool) -> None:
    """Show job ID: state, progress, rate and ETA, checkpoint, error."""
    data = state.client().get(f"/v1/jobs/{path_segment(job_id)}")
    if follow:
        from tui.follow import follow as follow_job

        follow_job(state, data)
        return

    def human(d: dict[str, Any]) -> None:
        p = d["progress"]
        shown = {**d, "progress": _progress(d), "rate": f"{p['rate']} {p['unit']}/s" if p["rate"] else None,
                 "eta_s": p["eta_s"]}
        fields(shown, ["id", "kind", "state", "project", "progress", "rate", "eta_s", "created_by", "created_at",
                       "started_at", "finished_at", "attempts", "error", "cancelled_by", "params", "checkpoint",
                       "result"])

    emit(state, data, human)


@cli_group.command(epilog=example("musubi jobs cancel j-6c1f0e2a9b3d"))
@click.argument("job_id", metavar="ID")
@pass_state
def cancel(state: CliState, job_id: str) -> None:
    """Cancel job ID: its work stops (your own job, or any with the kind's permission, e.g. index.build)."""
    data = state.client().post(f"/v1/jobs/{path_segment(job_id)}/cancel")

    def human(d: dict[str, Any]) -> None:
        if d["state"] == "cancelling":
            line(f"cancelling job {d['id']} ({d['kind']}) at {_progress(d)}; its work is stopping. "
                 f"See it with: musubi jobs show {d['id']}")
        else:
            line(f"cancelled job {d['id']} ({d['kind']}).")

    emit(state, data, human)
