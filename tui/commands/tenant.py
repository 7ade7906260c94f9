"""``musubi tenant create|list|show|suspend|resume``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from tui.output import (
    CliState,
    confirm,
    emit,
    example,
    fields,
    group,
    line,
    pass_state,
    table,
    when,
)

if TYPE_CHECKING:
    from core.api.responses import TenantRow

cli_group = group(
    "tenant",
    "Create, list, show, suspend and resume tenants. Creating, suspending and resuming need "
    "'tenant.manage' in tenant 'default'.",
    "musubi tenant create acme",
    "musubi tenant list --json",
    "musubi tenant suspend acme --reason 'unpaid invoice' --yes",
)

_yes = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal or with --json).")


def _one(d: Mapping[str, Any]) -> None:
    fields(d)


@cli_group.command(epilog=example("musubi tenant create acme"))
@click.argument("name")
@pass_state
def create(state: CliState, name: str) -> None:
    """Create tenant NAME (a-z, 0-9, '-'; up to 63) with you as its owner and default quotas."""
    data = state.client().call(calls.tenant_create(name))
    emit(state, data, lambda d: line(f"created tenant {d['name']} (owner {d['created_by']})."))


@cli_group.command("list", epilog=example("musubi tenant list", "musubi tenant list --json"))
@pass_state
def list_(state: CliState) -> None:
    """List the tenants you belong to (all of them for system owners)."""
    data = state.client().call(calls.tenants())

    def human(rows: list[TenantRow]) -> None:
        table(
            ("NAME", "STATUS", "MEMBERS", "PROJECTS", "YOUR ROLES", "CREATED (UTC)"),
            ((t["name"], t["status"], t["members"], t["projects"], t["your_roles"], when(t["created_at"])) for t in rows),
            empty="no tenants you belong to.",
            justify_right=("MEMBERS", "PROJECTS"),
        )

    emit(state, data, human)


@cli_group.command(epilog=example("musubi tenant show", "musubi tenant show acme --json"))
@click.argument("name", required=False)
@pass_state
def show(state: CliState, name: str | None) -> None:
    """Show tenant NAME (default: the current tenant)."""
    name = name or state.current_tenant()
    data = state.client().call(calls.tenant_show(name))
    emit(state, data, _one)


@cli_group.command(epilog=example("musubi tenant suspend acme --reason 'unpaid invoice'",
                                  "musubi tenant suspend acme --yes --json"))
@click.argument("name")
@click.option("--reason", metavar="TEXT", help="Why; kept with the tenant and in the audit log.")
@_yes
@pass_state
def suspend(state: CliState, name: str, reason: str | None, yes: bool) -> None:
    """Suspend tenant NAME: it then refuses everything but admin reads and resume."""
    confirm(state, f"suspend tenant {name!r}", yes, "Its members will be refused everything but admin reads.")
    data = state.client().call(calls.tenant_suspend(name, reason))
    emit(state, data, lambda d: line(f"tenant {d['name']} is suspended."))


@cli_group.command(epilog=example("musubi tenant resume acme --yes"))
@click.argument("name")
@_yes
@pass_state
def resume(state: CliState, name: str, yes: bool) -> None:
    """Resume suspended tenant NAME."""
    confirm(state, f"resume tenant {name!r}", yes)
    data = state.client().call(calls.tenant_resume(name))
    emit(state, data, lambda d: line(f"tenant {d['name']} is active again."))
