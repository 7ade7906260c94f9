"""``musubi login``: sign in through your identity provider (docs/identity.md).

The code for the provider runs here, in the CLI; the engine gets only the ID token and
validates it itself, then binds a session to your OS user.  The session id is kept in a 0600
file of yours (``MUSUBI_SSO_DIR``) and sent with every later command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.errors import BadRequest
from tui.output import CliState, MusubiCommand, emit, example, fields, line, pass_state, warn

if TYPE_CHECKING:
    from core.identity.flows import Provider, Tokens


def choose(rows: list[Any], name: str | None) -> Provider:
    """The provider ``name``, else the default; a usage error naming the choices otherwise."""
    from core.identity.flows import Provider

    if not rows:
        raise BadRequest("no identity provider is configured: add an [sso.providers.NAME] section to the engine's "
                         "config.toml (docs/identity.md#config).", code="sso_not_configured")
    known = ", ".join(r["name"] for r in rows)
    if name is None:
        picked = [r for r in rows if r.get("default")]
        if not picked:
            raise BadRequest(f"several providers are configured ({known}); pick one with --provider NAME "
                             "or set [sso] default.", field="provider")
        return Provider.of(picked[0])
    for r in rows:
        if r["name"] == name:
            return Provider.of(r)
    raise BadRequest(f"unknown provider {name!r}; configured: {known}.", field="provider")


def said(t: dict[str, Any]) -> str:
    """What a sign-in did to one tenant, in words."""
    role, prev = t.get("role"), t.get("previous_role")
    return {
        "grant": f"granted {role}",
        "update": f"role changed from {prev} to {role}",
        "revoke": f"role {prev} removed (no rule matches your groups any more)",
        "unchanged": f"{role} (unchanged)",
        "keep_manual": f"kept {role}: it was granted by hand, rules never change it",
        "keep_last_owner": f"kept {role}: you are the tenant's last owner",
    }.get(str(t.get("action")), str(t.get("action")))


def get_tokens(p: Provider, browser: bool, fresh: bool) -> Tokens:
    """Tokens from the cache (refresh) when possible, else from the device or browser flow."""
    from core.identity import flows, store
    from core.identity.errors import SignInFailed

    if p.kind == "entra":
        if browser:
            raise BadRequest("--browser is for generic OIDC providers; Entra ID signs in with the device flow here.",
                             field="browser")
        path = store.token_file(p.name, "msal")
        if fresh and path.exists():
            flows.msal_forget(p, str(path))
        return flows.msal_device_flow(p, warn, str(path))
    saved = None if fresh else store.load_tokens(p.name)
    if saved and isinstance(saved.get("refresh_token"), str):
        try:
            return flows.refresh(p, saved["refresh_token"])
        except SignInFailed:
            warn("musubi: the saved sign-in has expired; starting a new one.")
    if browser:
        import webbrowser

        def open_url(url: str) -> None:
            warn(f"Opening your browser to sign in. If it does not open, visit:\n  {url}")
            webbrowser.open(url)

        return flows.pkce_flow(p, open_url)
    return flows.device_flow(p, warn)


@click.command(
    "login",
    cls=MusubiCommand,
    epilog=example("musubi login", "musubi login --provider okta --json", "musubi login --browser   # on a desktop"),
)
@click.option("--provider", metavar="NAME",
              help="Provider from config.toml [sso.providers.NAME]. Default: [sso] default.")
@click.option("--browser", is_flag=True, help="Sign in in a local browser (authorization code + PKCE) instead of "
              "entering a code (device flow).")
@click.option("--fresh", is_flag=True, help="Ignore saved refresh tokens: always ask the provider again.")
@pass_state
def cli_group(state: CliState, provider: str | None, browser: bool, fresh: bool) -> None:
    """Sign in through your identity provider (device code flow; works over SSH).

    Prints a code to enter in any browser; once you approve, the engine validates the ID token
    and binds a session to your OS user.  Your groups then map to tenant roles (musubi sso list).
    """
    from core.identity import store

    client = state.client()
    p = choose(client.call(calls.sso_providers()), provider)
    tokens = get_tokens(p, browser, fresh)
    access = tokens.access_token if p.kind == "entra" else None  # only Entra's Graph overage needs it
    data = client.call(calls.sso_signin(p.name, tokens.id_token, tokens.nonce, access))
    path = store.save_session(state.paths().home, data["session"], p.name, data["expires_at"])
    if p.kind != "entra" and tokens.refresh_token:
        store.save_tokens(p.name, {"refresh_token": tokens.refresh_token})
    shown: dict[str, Any] = {k: v for k, v in data.items() if k != "session"}  # the session id stays in its file
    shown["session_file"] = str(path)

    def human(d: dict[str, Any]) -> None:
        fields(d, ["provider", "subject", "name", "email", "os_user", "expires_at", "groups", "app_roles"],
               title="Signed in")
        for t in d["tenants"]:
            line(f"tenant {t['tenant']}: {said(t)}")

    emit(state, shown, human)
