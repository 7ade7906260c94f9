"""``musubi member add|list|remove``: role bindings at tenant or project scope."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, emit, example, group, line, pass_state, table, when

if TYPE_CHECKING:
    from core.api.responses import MemberAdded, MemberRemoved, MemberRow

cli_group = group(
    "member",
    "Bind users to roles in the tenant, or in one project of it.",
    "musubi member add alice --role admin",
    "musubi member add bob --role member --project shop",
    "musubi member list --json",
)

_project = click.option(
    "--project", "binding_project", metavar="NAME",
    help="Bind in this project only (here --project names the binding's project, not the context project).",
)


@cli_group.command(epilog=example("musubi member add alice --role admin", "musubi member add bob --role viewer --project shop"))
@click.argument("user")
@click.option("--role", required=True, metavar="ROLE", help="Role to grant (see: musubi role list).")
@_project
@pass_state
def add(state: CliState, user: str, role: str, binding_project: str | None) -> None:
    """Give USER the role ROLE (replaces USER's role at that scope)."""
    data = state.client().call(calls.member_add(user, role, binding_project))

    def human(d: MemberAdded) -> None:
        where = f"project {d['project']} of tenant {d['tenant']}" if d.get("project") else f"tenant {d['tenant']}"
        verb = "now has" if d.get("action") == "member.update" else "added with"
        line(f"{d['user']} {verb} role {d['role']} in {where}.")

    emit(state, data, human)


@cli_group.command("list", epilog=example("musubi member list", "musubi --tenant acme member list --json"))
@pass_state
def list_(state: CliState) -> None:
    """List the tenant's role bindings."""
    data = state.client().call(calls.members())

    def human(rows: list[MemberRow]) -> None:
        table(("USER", "ROLE", "PROJECT", "SINCE (UTC)", "ADDED BY"),
              ((m["user"], m["role"], m["project"] or "(tenant)", when(m["since"]), m["added_by"]) for m in rows))

    emit(state, data, human)


@cli_group.command(epilog=example("musubi member remove bob", "musubi member remove bob --project shop"))
@click.argument("user")
@_project
@pass_state
def remove(state: CliState, user: str, binding_project: str | None) -> None:
    """Remove USER's binding in the tenant (or in --project)."""
    data = state.client().call(calls.member_remove(user, binding_project))

    def human(d: MemberRemoved) -> None:
        where = f"project {d['project']}" if d.get("project") else f"tenant {d['tenant']}"
        line(f"removed {d['user']} (role {d['removed_role']}) from {where}.")

    emit(state, data, human)
