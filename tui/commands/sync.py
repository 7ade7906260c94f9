"""``musubi sync jira|ado|gitlab|github --project KEY``: specs into a tracker (docs/integrations.md#sync).

Runs in the engine as a background job (it survives the terminal); this command starts it,
follows it, then prints what it did.  Exit 0 when everything is in step, 1 when an item
failed or a conflict waits for a decision (``--resolve ID=local|remote``).
"""

from __future__ import annotations

from typing import Any

import click

from core.api import calls
from core.errors import BadRequest
from tui.output import CliState, MusubiCommand, example, line, pass_state, warn

ONLY = {"requirements": ["requirement"], "tasks": ["task"]}


def _resolve(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        rid, sep, side = item.rpartition("=")
        if not sep or side not in ("local", "remote") or not rid:
            raise BadRequest(f"--resolve {item!r}: give ID=local (overwrite the tracker) or ID=remote (keep "
                             "the tracker's text), e.g. --resolve REQ-AUTH-001=local.", field="resolve")
        out[rid] = side
    return out


def summary(report: dict[str, Any]) -> None:
    """The report, for people."""
    mode = " (dry run: nothing written)" if report["dry_run"] else ""
    line(f"{report['system']} {report['project']}{mode}: {report['items']} items; "
         + ", ".join(f"{n} {k}" for k, n in report["planned"].items()))
    for what in ("created", "updated", "adopted"):
        for e in report[what]:
            line(f"  {what[:-1] if what != 'adopted' else 'adopted'} {e['artefact']}"
                 + (f" -> {e['key']}" if e.get("key") else "") + (f" ({e['url']})" if e.get("url") else ""))
    for e in report["status_changed"]:
        line(f"  status {e['artefact']} ({e['key']}): {e['from']} -> {e['to']}")
    for e in report["remote_edited"]:
        line(f"  kept remote edit {e['artefact']} ({e.get('key')}): {e.get('reason', '')}")
    for e in report["orphaned"]:
        line(f"  orphaned {e['artefact']} ({e['key']}): {e['reason']}")
    for e in report["conflicts"]:
        warn(f"conflict {e['artefact']}: {e['reason']}")
    for e in report["failed"]:
        warn(f"failed {e['artefact']} ({e['action']}): {e['message']}")


@click.command("sync", cls=MusubiCommand, epilog=example(
    "musubi sync jira --project PROJ --dry-run", "musubi sync github --project acme/app --json",
    "musubi sync jira --project PROJ --resolve REQ-AUTH-001=local"))
@click.argument("system", type=click.Choice(("jira", "ado", "gitlab", "github")))
@click.option("--project", "project_key", required=True, metavar="KEY",
              help="The remote project: a Jira key, owner/repo, a GitLab path or id, an Azure DevOps project.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing anywhere.")
@click.option("--resolve", multiple=True, metavar="ID=local|remote", help="Decide a conflict; repeatable.")
@click.option("--only", type=click.Choice(tuple(ONLY)), help="Sync only requirements or only tasks.")
@click.option("--detach", is_flag=True, help="Print the job id and return at once; the job runs in the engine.")
@pass_state
def cli_group(state: CliState, system: str, project_key: str, dry_run: bool, resolve: tuple[str, ...],
              only: str | None, detach: bool) -> None:
    """Sync the project's requirements (-> epics/features) and tasks (-> stories/issues) into SYSTEM.

    Links land in storage/traceability/links.yml; the status read back shows in the Trace tree.
    A second sync with nothing changed writes nothing. Edits on both sides are reported as
    conflicts and never overwritten until you choose with --resolve.
    """
    from tui.follow import follow

    call = calls.sync_start(system, project_key, dry_run or None, _resolve(resolve) or None,
                            ONLY[only] if only else None)
    job = state.client().call(call)["job"]
    final = follow(state, dict(job), detach=detach)
    if detach:
        return
    report = final.get("result") or {}
    if not state.json:
        summary(report)
    if report.get("failed") or report.get("conflicts"):
        raise click.exceptions.Exit(1)
