"""``musubi role create|list|show|delete``: built-in and custom roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, emit, example, fields, group, line, pass_state, table

if TYPE_CHECKING:
    from core.api.responses import Role, RoleShown

cli_group = group(
    "role",
    "List, show, create and delete roles. Built-in: owner, admin, member, viewer, guest, auditor "
    "(matrix in docs/rbac.md); custom roles are per tenant.",
    "musubi role list",
    "musubi role create reviewer --permission specs.read --permission runs.approve",
    "musubi role show auditor --json",
)


@cli_group.command(epilog=example(
    "musubi role create reviewer --permission specs.read --permission runs.approve --description 'approves runs'"))
@click.argument("name")
@click.option("--permission", "-p", "permissions", multiple=True, required=True, metavar="P",
              help="A permission the role grants (repeatable). See: musubi role show owner")
@click.option("--description", default="", metavar="TEXT", help="What the role is for.")
@pass_state
def create(state: CliState, name: str, permissions: tuple[str, ...], description: str) -> None:
    """Create custom role NAME; you may grant only permissions you hold."""
    data = state.client().call(calls.role_create(name, list(permissions), description))
    emit(state, data, lambda d: line(f"created role {d['name']}: {', '.join(d['permissions'])}."))


@cli_group.command("list", epilog=example("musubi role list"))
@pass_state
def list_(state: CliState) -> None:
    """List built-in and custom roles with their permissions."""
    data = state.client().call(calls.roles())

    def human(rows: list[Role]) -> None:
        table(("ROLE", "BUILT-IN", "PERMISSIONS", "DESCRIPTION"),
              ((r["name"], r["builtin"], r["permissions"], r["description"]) for r in rows),
              wrap=("PERMISSIONS", "DESCRIPTION"))

    emit(state, data, human)


@cli_group.command(epilog=example("musubi role show viewer"))
@click.argument("name")
@pass_state
def show(state: CliState, name: str) -> None:
    """Show role NAME and which permissions it grants."""
    data = state.client().call(calls.role_show(name))

    def human(d: RoleShown) -> None:
        fields(d, ["name", "builtin", "description"])
        table(("PERMISSION", "GRANTED"), sorted(d["matrix"].items()))

    emit(state, data, human)


@cli_group.command(epilog=example("musubi role delete reviewer"))
@click.argument("name")
@pass_state
def delete(state: CliState, name: str) -> None:
    """Delete custom role NAME (refused while someone is bound to it)."""
    data = state.client().call(calls.role_delete(name))
    emit(state, data, lambda d: line(f"deleted role {d['name']}."))
