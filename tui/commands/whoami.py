"""``musubi whoami``: who the engine thinks you are, and what you may do."""

from __future__ import annotations

from typing import Any

import click

from tui.output import CliState, MusubiCommand, emit, example, fields, pass_state


@click.command(
    "whoami",
    cls=MusubiCommand,
    epilog=example("musubi whoami", "musubi --tenant acme whoami --json", "musubi whoami --as bob"),
)
@pass_state
def cli_group(state: CliState) -> None:
    """Show who you are to the engine, with your roles and permissions.

    The user is the OS user on the other end of the socket, never a claim the client sends.
    """
    data = state.client().get("/v1/whoami")

    def human(d: dict[str, Any]) -> None:
        keys = ["user", "real_user", "tenant", "tenant_status", "project", "roles", "permissions"]
        if d.get("project") and "tenant_permissions" in d:
            keys.append("tenant_permissions")  # differs only in a project: what counts tenant-wide
        fields(d, keys)

    emit(state, data, human)
