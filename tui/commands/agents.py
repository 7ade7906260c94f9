"""``musubi agents list|show``: the agents workflows use, read from their files (no engine needed)."""

from __future__ import annotations

from typing import Any

import click

from tui.commands.workflows import ROOT_HELP, load
from tui.output import CliState, emit, example, fields, group, line, pass_state, table

cli_group = group(
    "agents",
    "The agents workflows use: role, task kind, tier, artefact, context pack and prompt.",
    "musubi agents list",
    "musubi agents show requirements-analyst --json",
)


@cli_group.command("list", epilog=example("musubi agents list", "musubi agents list --json"))
@click.option("--root", metavar="DIR", help=ROOT_HELP)
@pass_state
def list_(state: CliState, root: str | None) -> None:
    """Every agent and where it is defined (a project file beats a user file beats shipped)."""
    from core.orchestration.spec import agent_json

    cat = load(root)
    data = {"files": list(cat.files), "agents": [agent_json(cat.agents[n], cat.agent_sources[n])
                                                 for n in sorted(cat.agents)]}
    emit(state, data, lambda d: table(
        ("AGENT", "ROLE", "TASK", "TIER", "ARTEFACT", "CONTEXT", "SOURCE"),
        ((a["name"], a["role"], a["task"], a["tier"] or "-", a["artefact"],
          f"{a['context_budget']:,} tokens" if a["context_pack"] else "-", a["source"]) for a in d["agents"])))


@cli_group.command(epilog=example("musubi agents show code-reviewer", "musubi agents show triage --json"))
@click.argument("name")
@click.option("--root", metavar="DIR", help=ROOT_HELP)
@pass_state
def show(state: CliState, name: str, root: str | None) -> None:
    """One agent with its full prompt template."""
    from core.orchestration.spec import agent_json

    cat = load(root)
    data = agent_json(cat.agent(name), cat.agent_sources[name])

    def human(d: dict[str, Any]) -> None:
        fields(d, ["name", "role", "task", "tier", "artefact", "context_pack", "context_budget", "source"])
        line("prompt:")
        for ln in d["prompt"].splitlines():
            line(f"  {ln}")

    emit(state, data, human)
