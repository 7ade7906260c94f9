"""``musubi whoami``: who the engine thinks you are, and what you may do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, MusubiCommand, emit, example, fields, pass_state

if TYPE_CHECKING:
    from core.api.models import Whoami


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
    data = state.client().call(calls.whoami())

    def human(d: Whoami) -> None:
        keys = ["user", "real_user", "tenant", "tenant_status", "project", "roles", "permissions"]
        if d["project"]:
            keys.append("tenant_permissions")  # differs only in a project: what counts tenant-wide
        fields(d, [*keys, "system_admin"])

    emit(state, data, human)
