"""``musubi sso map|unmap|list|policy|providers``: how signed-in groups become tenant roles (docs/identity.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.api import calls
from tui.output import CliState, emit, example, fields, group, line, pass_state, table, when

if TYPE_CHECKING:
    from core.api.sso import SsoPolicy, SsoProvider, SsoRule

cli_group = group(
    "sso",
    "Map identity-provider groups and app roles to tenant roles; require SSO for a tenant.",
    "musubi sso map 6f1c0a2e-0000-4000-8000-000000000001 --tenant acme --role member",
    "musubi sso map Admins --claim roles --role admin",
    "musubi sso list --json",
    "musubi sso policy --require --break-glass alice",
)

_claim = click.option("--claim", type=click.Choice(["groups", "roles"]), default="groups", show_default=True,
                      help="Which claim of the ID token holds VALUE (Entra: groups are object ids).")
_provider = click.option("--provider", metavar="NAME", default="", help="Only for this provider. Default: any.")


@cli_group.command("map", epilog=example("musubi sso map grp-dev --tenant acme --role member",
                                         "musubi sso map Reader --claim roles --role viewer --json"))
@click.argument("value")
@click.option("--role", required=True, metavar="ROLE", help="Tenant role to grant (see: musubi role list).")
@_claim
@_provider
@pass_state
def map_(state: CliState, value: str, role: str, claim: str, provider: str) -> None:
    """Grant ROLE in the tenant (--tenant) to whoever signs in with VALUE in their groups (or --claim roles).

    Applied at each sign-in: a user whose groups no longer match loses a role a sign-in granted.
    """
    data = state.client().call(calls.sso_rule_set(value, role, claim, provider or None))

    def human(d: SsoRule) -> None:
        line(f"{d.get('claim')} {d.get('value')!r} -> role {d.get('role')} in tenant {d.get('tenant')} "
             f"({d.get('action')}); applies at each sign-in.")

    emit(state, data, human)


@cli_group.command("unmap", epilog=example("musubi sso unmap grp-dev", "musubi sso unmap Reader --claim roles"))
@click.argument("value")
@_claim
@_provider
@pass_state
def unmap(state: CliState, value: str, claim: str, provider: str) -> None:
    """Remove the rule for VALUE (roles it granted go at each user's next sign-in)."""
    data = state.client().call(calls.sso_rule_remove(value, claim, provider or None))

    def human(d: SsoRule) -> None:
        line(f"removed: {d.get('claim')} {d.get('value')!r} -> role {d.get('role')} in tenant {d.get('tenant')}.")

    emit(state, data, human)


@cli_group.command("list", epilog=example("musubi sso list", "musubi --tenant acme sso list --json"))
@pass_state
def list_(state: CliState) -> None:
    """List the tenant's mapping rules."""
    data = state.client().call(calls.sso_rules())

    def human(rows: list[SsoRule]) -> None:
        table(("CLAIM", "VALUE", "ROLE", "PROVIDER", "SINCE (UTC)", "BY"),
              ((r.get("claim"), r.get("value"), r.get("role"), r.get("provider") or "(any)", when(r.get("created_at")),
                r.get("created_by")) for r in rows),
              empty="no mapping rules; add one with: musubi sso map GROUP --role ROLE")

    emit(state, data, human)


@cli_group.command("policy", epilog=example("musubi sso policy", "musubi sso policy --require --break-glass alice",
                                            "musubi sso policy --no-require"))
@click.option("--require/--no-require", "required", default=None,
              help="Refuse callers known only by their OS user in this tenant (or stop refusing them).")
@click.option("--break-glass", metavar="OWNER", default=None,
              help="A tenant owner who may still act without SSO (for when the provider is down).")
@pass_state
def policy(state: CliState, required: bool | None, break_glass: str | None) -> None:
    """Show or set the tenant's SSO policy ("SSO required", break-glass owner)."""
    if required is None and break_glass is not None:
        raise click.UsageError("--break-glass goes with --require (or --no-require).")
    client = state.client()
    data = client.call(calls.sso_policy() if required is None else calls.sso_policy_set(required, break_glass))

    def human(d: SsoPolicy) -> None:
        fields(d, ["tenant", "sso_required", "break_glass", "updated_at", "updated_by"])

    emit(state, data, human)


@cli_group.command("providers", epilog=example("musubi sso providers --json"))
@pass_state
def providers(state: CliState) -> None:
    """List the identity providers the engine's config.toml defines."""
    data = state.client().call(calls.sso_providers())

    def human(rows: list[SsoProvider]) -> None:
        table(("NAME", "KIND", "CLIENT ID", "ISSUER / AUTHORITY", "DEFAULT"),
              ((r["name"], r["kind"], r["client_id"], r["issuer"] or r["authority"], r["default"]) for r in rows),
              empty="no providers; add [sso.providers.NAME] to config.toml (docs/identity.md#config)")

    emit(state, data, human)


