"""SSO routes: ``/v1/sso/...`` (providers, sign-in session, mapping rules, tenant policy).

The sign-in handler does the network part (the provider's keys, Graph for group overage) in a
thread, then runs one operation of :class:`~core.identity.service.IdentityService` that applies
the mapping and opens the session.  A refused token is itself an operation that raises, so the
refusal is audited (in the system log) like every denial.  docs/api.md#sso documents the routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from core.api import models as m
from core.api import sso as s
from core.config import load_config
from core.engine.access import Caller
from core.engine.http import Api, json_response
from core.engine.routing import Route
from core.errors import BadRequest, MusubiError
from core.identity import graph, mapping
from core.identity.service import SSO_SESSION_HEADER, digest
from core.identity.settings import ProviderSettings, SsoSettings
from core.identity.tokens import validate_id_token
from core.rbac import SYSTEM_LOG

SESSION_HEADER = SSO_SESSION_HEADER


def sso_settings() -> SsoSettings:
    """``[sso]`` of config.toml, read now (so an edit applies at the next sign-in)."""
    return load_config(check_models=False).sso


def provider_named(settings: SsoSettings, name: str) -> ProviderSettings:
    if not settings.providers:
        raise BadRequest("no identity provider is configured: add an [sso.providers.NAME] section to config.toml "
                         "(docs/identity.md#config).", code="sso_not_configured")
    p = settings.providers.get(name)
    if p is None:
        raise BadRequest(f"unknown identity provider {name[:64]!r}; config.toml defines "
                         f"{', '.join(sorted(settings.providers))}.", field="provider", code="unknown_provider")
    return p


class SsoRoutes:
    """Handlers over ``engine.identity``."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def providers(self, request: web.Request, _req: m.Empty) -> web.Response:
        await self.api.ctx(request, outsiders=True)
        st = await asyncio.to_thread(sso_settings)
        default = st.default or (next(iter(st.providers)) if len(st.providers) == 1 else None)
        rows: list[s.SsoProvider] = [
            {"name": n, "kind": p.kind, "client_id": p.client_id, "issuer": p.issuer or None,
             "authority": p.authority or None, "scopes": list(p.scopes), "ca_bundle": p.ca_bundle,
             "default": n == default}
            for n, p in sorted(st.providers.items())
        ]
        return json_response(rows)

    async def _validate(self, me: Caller, action: str, provider: str, id_token: str, nonce: str | None,
                        access_token: str | None) -> tuple[SsoSettings, dict[str, Any], dict[str, set[str]], bool]:
        """Validate ``id_token`` (core/identity/tokens.py) and read its groups; a refusal is audited as ``action``."""
        st = await asyncio.to_thread(sso_settings)
        prov = provider_named(st, provider)
        keys = self.api.e.identity.keys_for(provider, prov)
        try:
            claims = await asyncio.to_thread(
                validate_id_token, id_token, keys, client_id=prov.client_id, skew_s=st.skew_s,
                nonce=nonce, max_age_s=st.max_token_age_s,
            )
            groups = None
            overage = graph.has_overage(claims, prov.groups_claim)
            if overage:
                groups = await self._overage(prov, claims, access_token)
        except MusubiError as exc:
            if exc.exit_code != 4:  # not a refusal (the provider is down, the config is wrong): not a sign-in attempt
                raise
            err = exc

            def refuse() -> None:
                raise err

            await self.api.r.run(me, action, f"provider:{provider}", refuse)  # audits the refusal, then raises it
            raise
        return st, claims, mapping.values_of(claims, prov.groups_claim, prov.roles_claim, groups), overage

    async def signin(self, request: web.Request, req: s.SsoSignIn) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        me = Caller(c.real_user, c.real_user, SYSTEM_LOG)  # a sign-in is the socket peer's own act
        st, claims, values, overage = await self._validate(me, "sso.signin", req.provider, req.id_token, req.nonce,
                                                           req.access_token)
        out = await self.api.e.identity.open_session(me, req.provider, claims, digest(req.id_token),
                                                     st.session_minutes, values, overage)
        return json_response(out, 201)

    async def verify(self, request: web.Request, req: s.SsoVerify) -> web.Response:
        """An ID token ``musubi serve web --oidc`` got for a browser: validated exactly like ``musubi login``'s.

        Only the engine's OS user acting as themself (what ``musubi serve`` runs as) may ask; the
        serve process then maps the subject to a musubi user and mints a session (``oidc:<provider>``).
        """
        c = await self.api.ctx(request, outsiders=True)
        me = Caller(c.real_user, c.user, SYSTEM_LOG, session=c.session)
        svc = self.api.e.identity
        await svc.check_engine_user(me, req.provider)
        _st, claims, values, _overage = await self._validate(me, "sso.verify", req.provider, req.id_token, req.nonce,
                                                             None)
        out = await svc.verify_token(me, req.provider, claims, digest(req.id_token), values)
        return json_response(out)

    @staticmethod
    async def _overage(prov: ProviderSettings, claims: dict[str, Any], access_token: str | None) -> list[str]:
        from core.identity.errors import TokenRefused

        if prov.kind != "entra":
            raise TokenRefused("the ID token names its groups elsewhere (_claim_names), which only Entra ID "
                               "providers resolve here; ask the provider to emit the groups claim.", permission="sso")
        if not access_token:
            raise TokenRefused("you are in too many groups for the ID token to carry them; sign in with musubi login, "
                               "which also sends the Graph access token the engine needs to read them.",
                               permission="sso")
        oid = str(claims.get("oid") or claims["sub"])
        return await asyncio.to_thread(graph.member_objects, prov.graph_url, oid, access_token, prov.ca_bundle or True)

    async def session_show(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(self.api.e.identity.session_show(c))

    async def signout(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        me = Caller(c.real_user, c.real_user, SYSTEM_LOG)
        sid = request.headers.get(SESSION_HEADER)
        return json_response(await self.api.e.identity.close_session(me, sid))


R = Route
F = SsoRoutes
ROUTES: tuple[Route, ...] = (
    R("GET", "/v1/sso/providers", "", "open", response=list[s.SsoProvider], handler=F.providers, feature=F),
    R("POST", "/v1/sso/session", "sso.signin", "open", s.SsoSignIn, s.SsoSignedIn, handler=F.signin, feature=F),
    R("GET", "/v1/sso/session", "", "open", response=s.SsoSessionShown, handler=F.session_show, feature=F),
    R("DELETE", "/v1/sso/session", "sso.signout", "open", response=s.SsoSignedOut, handler=F.signout, feature=F),
    R("POST", "/v1/sso/verify", "sso.verify", "engine", s.SsoVerify, s.SsoVerified, handler=F.verify, feature=F),
    R("GET", "/v1/sso/rules", "sso.rule.list", "members.manage", response=list[s.SsoRule], op="identity.rule_list",
      resource="sso_rules"),
    R("PUT", "/v1/sso/rules", "sso.rule.set", "members.manage", s.SsoRuleSet, s.SsoRule, op="identity.rule_set",
      resource=lambda r: f"sso_rule:{r.claim}:{r.value}"),
    R("DELETE", "/v1/sso/rules", "sso.rule.remove", "members.manage", s.SsoRuleRemove, s.SsoRule,
      op="identity.rule_remove", resource=lambda r: f"sso_rule:{r.claim}:{r.value}"),
    R("GET", "/v1/sso/policy", "sso.policy.show", "members.manage", response=s.SsoPolicy, op="identity.policy_show",
      resource="sso_policy"),
    R("PUT", "/v1/sso/policy", "sso.policy", "tenant.manage", s.SsoPolicySet, s.SsoPolicy, op="identity.policy_set",
      resource="sso_policy"),
)
