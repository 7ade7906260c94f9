"""``musubi run WORKFLOW --feature TEXT``: start an orchestration run and follow it (docs/runs.md)."""

from __future__ import annotations

import click

from core.api import calls
from tui.output import CliState, MusubiCommand, emit, example, line, pass_state


@click.command(
    "run",
    cls=MusubiCommand,
    epilog=example('musubi run spec --feature "add a --json flag to export"',
                   'musubi run implement --feature "retry uploads" --model gpt-5.4-mini --budget-usd 0.50',
                   'musubi run spec --feature "audit trail" --detach --json'),
)
@click.argument("workflow", metavar="WORKFLOW")
@click.option("--feature", required=True, metavar='"TEXT"', help="What the run should build (the workflow's input).")
@click.option("--model", metavar="M", help="Use model M for every call (it must be allowed); default: the router.")
@click.option("--budget-tokens", metavar="N", help="Stop before a call would pass N tokens in this run.")
@click.option("--budget-usd", metavar="D", help="Stop before a call would pass D dollars in this run.")
@click.option("--max-turns", metavar="N", help="At most N model calls in the run (default 200).")
@click.option("--max-step-turns", metavar="N", help="At most N model calls per step (default 25).")
@click.option("--gate-timeout", "gate_timeout_s", metavar="S", help="Seconds an approval gate waits before it fails "
              "closed (default 86,400).")
@click.option("--detach", is_flag=True, help="Print the run id and return; the run goes on in the engine.")
@pass_state
def cli_group(state: CliState, workflow: str, feature: str, model: str | None, budget_tokens: str | None,
              budget_usd: str | None, max_turns: str | None, max_step_turns: str | None,
              gate_timeout_s: str | None, detach: bool) -> None:
    """Run a workflow (requirements, design, tasks, ...) on a feature, charged and audited, in the engine.

    Progress streams until the run ends; it keeps running if the terminal goes (follow it again
    with: musubi runs show ID --follow). Exit 0 done, 3 stopped by a quota, 4 by a permission, 1 otherwise.
    """
    run = state.client().call(calls.run_start(workflow, feature, model, budget_tokens, budget_usd, max_turns,
                                              max_step_turns, gate_timeout_s))
    if detach:
        emit(state, run, lambda r: line(f"started run {r['id']} ({r['workflow']}); it runs in the engine. "
                                        f"Follow it with: musubi runs show {r['id']} --follow"))
        return
    from tui.runfollow import follow

    follow(state, dict(run))
