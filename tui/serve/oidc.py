"""OpenID Connect sign-in for ``musubi serve web --oidc PROVIDER`` (docs/remote.md#oidc).

The server is the relying party of one provider of config.toml's ``[sso]`` (read through the
engine, ``GET /v1/sso/providers``: one source of truth with ``musubi login``):

1. ``/oidc/login`` sends the browser to the provider's ``authorization_endpoint`` with the
   authorization code flow, PKCE (S256), a random ``state`` and ``nonce``, and this server's
   redirect URI ``PUBLIC_URL/oidc/callback`` (from the configuration, never the Host header);
2. ``/oidc/callback`` takes the pending request its ``state`` names (once, within 10 minutes;
   an unknown or reused state is refused before any exchange), exchanges the code at the
   ``token_endpoint`` with the PKCE verifier (a public client: no secret);
3. the **engine** validates the ID token exactly as for ``musubi login`` (signature by ``kid``,
   ``iss``, ``aud``, times, ``nonce`` equal to the one sent, each token once:
   ``POST /v1/sso/verify``), and answers the subject, email, groups and roles;
4. the users file says who the subject (or email) is here, ``musubi:user=NAME,tenant=TENANT
   SUBJECT``; an unlisted subject is refused. The session then minted is ``oidc:<provider>``,
   which counts as SSO, and its groups/roles go through the SSO mapping rules.

Tokens never reach a log, a page or an audit event: only the subject.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.api import calls
from core.errors import MusubiError
from core.identity.flows import Provider, authorize_url, exchange_code, pkce_pair
from tui.serve.keys import KeysFileError, check_safe
from tui.serve.saml import parse_users

if TYPE_CHECKING:
    from tui.serve.web import WebServer

REQUEST_TTL_S = 600  # how long an authorization request may wait for its answer
MAX_PENDING = 10_000  # /oidc/login is open to anyone: bound what it can fill
MAX_PARAM = 4096  # characters of a code or state


class OidcRefused(MusubiError):
    """An OIDC answer that does not sign anyone in."""

    code = "oidc_refused"
    http_status = 403


@dataclass
class Pending:
    nonce: str
    verifier: str
    expires: float  # time.monotonic()


@dataclass
class OidcRP:
    """The relying party: the provider's public settings, the users map, outstanding requests."""

    provider: Provider
    users: dict[str, tuple[str, str]]
    pending: dict[str, Pending] = field(default_factory=dict)  # state -> the request it belongs to
    _discovery: dict[str, Any] | None = None

    @staticmethod
    def read_users(path: Path) -> dict[str, tuple[str, str]]:
        """The users file (the SAML users file's format, keyed by the ID token's ``sub`` or ``email``)."""
        try:
            check_safe(path, path.stat())
            return parse_users(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise KeysFileError(f"cannot read the OIDC users file {path}: {exc.strerror}.") from None

    @classmethod
    async def load(cls, server: WebServer, name: str, users_file: Path) -> OidcRP:
        """Provider ``name`` as the engine's config.toml defines it; a clear error when it does not."""
        rows = await server.link.api.call(calls.sso_providers())
        row = next((r for r in rows if r["name"] == name), None)
        if row is None:
            known = ", ".join(r["name"] for r in rows) or "none"
            raise KeysFileError(f"--oidc {name}: config.toml defines no such provider (it has: {known}); add "
                                "[sso.providers.NAME] (docs/identity.md#config).")
        return cls(Provider.of(dict(row)), cls.read_users(users_file))

    def redirect_uri(self, server: WebServer) -> str:
        return f"{server.public_url}/oidc/callback"

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            self._discovery = await asyncio.to_thread(self.provider.discovery)
        return self._discovery

    def install(self, app: web.Application, server: WebServer) -> None:
        routes = OidcRoutes(self, server)
        app.add_routes([web.get("/oidc/login", routes.login), web.get("/oidc/callback", routes.callback)])

    async def begin(self, server: WebServer) -> str:
        """A new authorization request: the provider's URL to send the browser to."""
        disc = await self.discovery()
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        now = time.monotonic()
        self.pending = {k: v for k, v in self.pending.items() if v.expires > now}
        if len(self.pending) >= MAX_PENDING:
            del self.pending[next(iter(self.pending))]
        self.pending[state] = Pending(nonce, verifier, now + REQUEST_TTL_S)
        return authorize_url(self.provider, disc, self.redirect_uri(server), state, nonce, challenge)

    async def finish(self, server: WebServer, query: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
        """(user, tenant, the engine's verified identity) of a callback; :class:`OidcRefused` naming why not."""
        state = query.get("state", "")[:MAX_PARAM]
        p = self.pending.pop(state, None)
        if p is None or p.expires <= time.monotonic():
            raise OidcRefused("unknown or expired state: the answer belongs to no pending sign-in of this server")
        if "error" in query:
            raise OidcRefused(f"the provider answered {query['error'][:80]}")
        code = query.get("code", "")
        if not code or len(code) > MAX_PARAM:
            raise OidcRefused("no authorization code in the answer")
        try:
            disc = await self.discovery()
            tokens = await asyncio.to_thread(exchange_code, self.provider, disc, code, self.redirect_uri(server),
                                             p.verifier, p.nonce)
            who = await server.link.api.call(calls.sso_verify(self.provider.name, tokens.id_token, p.nonce))
        except MusubiError as exc:
            raise OidcRefused(exc.message) from None
        for key in (who["subject"], who.get("email") or ""):
            if key in self.users:
                user, tenant = self.users[key]
                return user, tenant, dict(who)
        raise OidcRefused(f"subject {who['subject']!r} ({who.get('email') or 'no email'}) is not in the OIDC "
                          "users file")


class OidcRoutes:
    """``/oidc/login`` and ``/oidc/callback`` of the web server."""

    def __init__(self, rp: OidcRP, server: WebServer) -> None:
        self.rp, self.srv = rp, server

    async def login(self, request: web.Request) -> web.StreamResponse:
        try:
            url = await self.rp.begin(self.srv)
        except MusubiError as exc:
            return await self.srv.login_page(request, f"the identity provider cannot be reached: {exc.message}", 503)
        return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})

    async def callback(self, request: web.Request) -> web.StreamResponse:
        addr, client = str(request.remote), self.srv.client(request)
        blocked = await self.srv.refuse_if_blocked(request)
        if blocked is not None:
            return blocked
        try:
            user, tenant, who = await self.rp.finish(self.srv, dict(request.query))
        except OidcRefused as exc:
            self.srv.limiter.failed(addr)
            await self.srv.link.event("refused", client=client, reason=f"OIDC: {exc.message}"[:1000])
            return await self.srv.login_page(request, f"OIDC sign-in refused: {exc.message}", 403)
        return await self.srv.signed_in(request, user, tenant, "oidc", str(who.get("email") or who["subject"]),
                                        auth=f"oidc:{self.rp.provider.name}", groups=tuple(who["groups"]),
                                        roles=tuple(who["roles"]))
