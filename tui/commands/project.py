"""``musubi project add|list|remove``: repositories registered under a tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, abspath, emit, example, group, line, pass_state, table

if TYPE_CHECKING:
    from core.api.responses import ProjectRow

cli_group = group(
    "project",
    "Register repositories as projects of the tenant. Commands run inside a registered "
    "repository act in that project.",
    "musubi project add .",
    "musubi project add ~/src/shop --name shop",
    "musubi project list --json",
)


@cli_group.command(epilog=example("musubi project add .", "musubi project add ~/src/shop --name shop"))
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--name", metavar="NAME", help="Project name (default: the folder's name).")
@click.option("--shared", is_flag=True,
              help="Allow a folder another tenant already registered (system owners only).")
@pass_state
def add(state: CliState, path: str, name: str | None, shared: bool) -> None:
    """Register the directory PATH (resolved to an absolute path here) as a project.

    You must be able to read PATH yourself; it is stored with symlinks resolved.
    """
    data = state.client().call(calls.project_add(abspath(path), name, shared or None))
    emit(state, data, lambda d: line(f"added project {d['name']} ({d['path']}) to tenant {d['tenant']}."))


@cli_group.command("list", epilog=example("musubi project list"))
@pass_state
def list_(state: CliState) -> None:
    """List the tenant's projects; '*' marks the one the current directory is in."""
    data = state.client().call(calls.projects())

    def human(rows: list[ProjectRow]) -> None:
        table(("", "NAME", "PATH"), (("*" if p["current"] else "", p["name"], p["path"]) for p in rows),
              empty=f"no projects in tenant {state.current_tenant()}; add one with: musubi project add PATH")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi project remove shop"))
@click.argument("name")
@pass_state
def remove(state: CliState, name: str) -> None:
    """Unregister project NAME (its project-scoped member bindings go with it; files stay)."""
    data = state.client().call(calls.project_remove(name))
    emit(state, data, lambda d: line(
        f"removed project {d['name']} ({d['path']}); {d['bindings_removed']} project binding(s) removed."))
