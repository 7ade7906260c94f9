"""Tenant policy "SSO required": who counts as signed in through SSO, and the gate itself.

A pure function over the engine's state (no writes, no awaits), used by the request context
(``core/engine/http.py``, through :meth:`IdentityService.gate`) and by the routes that check
for themselves (``tenant show``, and the system acts governed by the system tenant's policy).

Counts as SSO (docs/identity.md#sso-required):

- a local caller with a live ``musubi login`` session (``Caller.sso``), bound to its OS user;
- a remote session (``musubi serve``) whose user signed in at an identity provider:
  ``Caller.auth`` is ``saml:<idp>`` or ``oidc:<provider>``.

Does not: an OS user alone, an SSH key session (``ssh-key``), a web token session
(``web-token``): those are identity by configuration.  The one exception is the policy's
break-glass owner acting as themself (not through ``--as``), for when the IdP is down.
"""

from __future__ import annotations

from typing import Any

from core.engine.access import Caller
from core.errors import PermissionDenied

SSO_AUTH = ("saml:", "oidc:")


def signed_in(ctx: Caller) -> bool:
    """Whether ``ctx`` comes with an SSO sign-in (a live `musubi login` session, or a SAML/OIDC remote session)."""
    if ctx.session is not None:  # a remote session: only how its own user signed in counts
        return str(ctx.auth or "").startswith(SSO_AUTH)
    return ctx.sso is not None


def gate(state: Any, ctx: Caller, tenant: str | None = None) -> None:
    """Refuse ``ctx`` in ``tenant`` (default: its own) when that tenant requires SSO and ``ctx`` has none."""
    tenant = tenant or ctx.tenant
    pol = state.sso_policies.get(tenant)
    if pol is None or not pol["sso_required"] or signed_in(ctx):
        return
    bg = pol["break_glass"]
    if bg and ctx.real_user == bg and ctx.user == bg and "owner" in state.roles_of(tenant, bg, None):
        return
    if ctx.session is not None:
        raise PermissionDenied(
            f"permission denied: tenant {tenant!r} requires SSO sign-in and this remote session of {ctx.user} was "
            f"authenticated by {ctx.auth or 'configuration'}, which is not SSO. Sign in through the web server's "
            "identity provider instead (musubi serve web --saml DIR or --oidc PROVIDER; docs/identity.md#sso-required)",
            permission="sso", code="sso_required",
        )
    raise PermissionDenied(
        f"permission denied: tenant {tenant!r} requires SSO sign-in and {ctx.real_user} has no live "
        "session on this engine. Sign in with: musubi login (docs/identity.md#sso-required)",
        permission="sso", code="sso_required",
    )
