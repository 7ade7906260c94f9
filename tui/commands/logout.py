"""``musubi logout``: end your engine session and forget the provider's tokens (docs/identity.md)."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from core.api import calls
from core.errors import NotFound
from tui.output import CliState, MusubiCommand, emit, example, line, pass_state


@click.command("logout", cls=MusubiCommand, epilog=example("musubi logout", "musubi logout --json"))
@pass_state
def cli_group(state: CliState) -> None:
    """Sign out: end your engine session and delete your saved tokens.

    Roles your groups granted stay until your next sign-in re-evaluates them; a tenant that
    requires SSO refuses you from now on.
    """
    from core.identity import store

    home = state.paths().home
    saved = store.read_session(home)
    out: dict[str, Any] = {"signed_out": False, "provider": saved.get("provider") if saved else None,
                           "forgotten": []}
    with contextlib.suppress(NotFound):  # no live session on the engine: still forget the local files
        out.update(state.client().call(calls.sso_signout()))
    out["session_file_removed"] = store.clear_session(home)
    if out["provider"]:
        out["forgotten"] = store.forget_tokens(str(out["provider"]))

    def human(d: dict[str, Any]) -> None:
        line("Signed out." if d["signed_out"] else "You were not signed in on this engine; local files cleared.")

    emit(state, out, human)
