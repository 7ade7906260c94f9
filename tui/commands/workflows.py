"""``musubi workflows list|show``: the workflows you can run and estimate, read from their files.

The same loader the engine uses (``core.orchestration.spec``) reads the shipped workflows,
your config folder's ``workflows.toml`` and the project's ``.musubi/workflows.toml``, so a
bad file shows here with its line and fix before a run or an estimate trips on it.  No
engine is needed: these are your own files.
"""

from __future__ import annotations

import os
from typing import Any

import click

from tui.output import (
    CliState,
    abspath,
    emit,
    example,
    fields,
    group,
    line,
    pass_state,
    table,
    working_dir,
)

cli_group = group(
    "workflows",
    "The workflows you can run and estimate: shipped, from your config folder and from the project's .musubi/.",
    "musubi workflows list",
    "musubi workflows show implement --json",
)

ROOT_HELP = "Project whose .musubi/ files to read (default: the repository around the current directory)."


def catalog_dirs(root: str | None) -> dict[str, str | None]:
    """The project root and user folder to read (the same places the engine reads for this project)."""
    from core.config import config_dir
    from core.trace.root import find_repo_root

    if root is not None and not os.path.isdir(root):
        raise click.BadParameter(f"{root} is not a directory; give the project's folder.", param_hint="--root")
    project = abspath(root) if root else find_repo_root(working_dir())
    return {"project_root": project, "user_dir": str(config_dir())}


def load(root: str | None) -> Any:
    from core.orchestration.spec import load_catalog

    return load_catalog(**catalog_dirs(root))


def _summary(steps: list[dict[str, Any]]) -> str:
    def one(s: dict[str, Any]) -> str:
        if s["type"] == "agent":
            return s["id"]
        inner = ", ".join(one(c) for c in s.get("steps", [])) or "+".join(s["agents"])
        return f"{s['type']}({inner})"

    return " -> ".join(one(s) for s in steps)


@cli_group.command("list", epilog=example("musubi workflows list", "musubi workflows list --root ~/src/shop --json"))
@click.option("--root", metavar="DIR", help=ROOT_HELP)
@pass_state
def list_(state: CliState, root: str | None) -> None:
    """Every workflow, its steps and where it is defined (a project file beats a user file beats shipped)."""
    from core.orchestration.spec import workflow_json

    cat = load(root)
    data = {"files": list(cat.files), "workflows": [workflow_json(cat.workflows[n], cat.agents)
                                                    for n in sorted(cat.workflows)]}
    emit(state, data, lambda d: table(
        ("WORKFLOW", "STEPS", "SOURCE", "DESCRIPTION"),
        ((w["name"], _summary(w["steps"]), w["source"], w["description"]) for w in d["workflows"]),
        wrap=("STEPS", "DESCRIPTION")))


def _tree(steps: list[dict[str, Any]], depth: int = 0) -> None:
    for s in steps:
        opts = ", ".join(f"{k}={v}" for k, v in s["options"].items() if v not in (None, {}, [], ""))
        who = f" [{', '.join(s['agents'])}]" if s["agents"] else ""
        line(f"{'  ' * (depth + 1)}{s['id']}: {s['type']}{who}{f' ({opts})' if opts else ''}")
        _tree(s.get("steps", []), depth + 1)


@cli_group.command(epilog=example("musubi workflows show implement", "musubi workflows show full --json"))
@click.argument("name")
@click.option("--root", metavar="DIR", help=ROOT_HELP)
@pass_state
def show(state: CliState, name: str, root: str | None) -> None:
    """One workflow: budgets, its step tree with every option, and the calls an estimate counts."""
    from core.orchestration.spec import workflow_json

    cat = load(root)
    data = workflow_json(cat.workflow(name), cat.agents)

    def human(d: dict[str, Any]) -> None:
        fields(d, ["name", "description", "source", "on_error", "agents"])
        b = {k: v for k, v in d["budget"].items() if v is not None}
        line(f"budget per run: {b or 'none'}")
        for a, ab in d["agent_budget"].items():
            line(f"budget of {a}: {ab}")
        line("steps:")
        _tree(d["steps"])
        line("an estimate counts these calls:")
        for c in d["planned_calls"]:
            line(f"  {c['path']}: {c['agent']} ({c['task']})")

    emit(state, data, human)
