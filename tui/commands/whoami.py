"""``musubi whoami``: who the engine thinks you are, and what you may do."""

from __future__ import annotations

from typing import Any

import click

from core.api import calls
from core.errors import NotFound
from tui.output import CliState, MusubiCommand, emit, example, fields, pass_state, when


@click.command(
    "whoami",
    cls=MusubiCommand,
    epilog=example("musubi whoami", "musubi --tenant acme whoami --json", "musubi whoami --as bob"),
)
@pass_state
def cli_group(state: CliState) -> None:
    """Show who you are to the engine, with your roles and permissions.

    The user is the OS user on the other end of the socket, never a claim the client sends;
    beside it, the identity you signed in with (musubi login), when you did.
    """
    client = state.client()
    data: dict[str, Any] = dict(client.call(calls.whoami()))
    # The signed-in identity (musubi login) beside the OS user; an engine without SSO routes shows none.
    try:
        data["sso"] = client.call(calls.sso_session())
    except NotFound:
        data["sso"] = None

    def human(d: dict[str, Any]) -> None:
        keys = ["user", "real_user", "tenant", "tenant_status", "project", "roles", "permissions"]
        if d["project"]:
            keys.append("tenant_permissions")  # differs only in a project: what counts tenant-wide
        sso = d.get("sso") or {}
        shown = {**d, "signed_in_as": (f"{sso.get('email') or sso.get('subject')} via {sso.get('provider')} "
                                       f"(until {when(sso.get('expires_at'))} UTC)") if sso.get("signed_in") else "-"}
        fields(shown, [*keys, "system_admin", "signed_in_as"])

    emit(state, data, human)
