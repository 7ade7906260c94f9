"""Remote-session routes: mint, list and revoke session tokens; audit remote log-ins (docs/remote.md).

Only the engine's OS user acting as themself (what ``musubi serve`` runs as) may
call them, except that a session may end itself (``DELETE /v1/sessions/{id}`` with
its own token: logout).  Refusals are audited like every denial; a mint is
audited in the tenant it is for, or in the system log when there is no such tenant.
"""

from __future__ import annotations

from aiohttp import web

from core.api import models as m
from core.api import sessions as s
from core.engine.access import Caller
from core.engine.http import Api, json_response
from core.engine.routing import Route
from core.rbac import SYSTEM_LOG


class SessionRoutes:
    """Handlers over ``engine.sessions`` (:class:`core.identity.sessions.SessionService`)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def _in(self, c: Caller, tenant: str | None) -> Caller:
        """``c`` logged in ``tenant`` (the system log when it does not exist), for the audit of a refusal."""
        where = tenant if tenant and tenant in self.api.r.state.tenants else SYSTEM_LOG
        return Caller(c.real_user, c.user, where, c.project, sso=c.sso, session=c.session, auth=c.auth)

    async def mint(self, request: web.Request, req: s.SessionMint) -> web.Response:
        c = self._in(await self.api.ctx(request, outsiders=True), req.tenant)
        svc = self.api.e.sessions
        mapper = self.api.e.identity.map_remote  # a SAML/OIDC sign-in's groups go through the SSO rules first
        out = await self.api.r.run(c, "session.mint", f"user:{req.user}",
                                   lambda: svc.mint(c, **req.args(), mapper=mapper))
        return json_response(out, 201)

    async def list(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        svc = self.api.e.sessions
        return json_response(await self.api.r.run(c, "session.list", "sessions", lambda: svc.list(c)))

    async def revoke(self, request: web.Request, req: s.SessionPath) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        svc = self.api.e.sessions
        out = await self.api.r.run(c, "session.revoke", f"session:{req.id}", lambda: svc.revoke(c, req.id, req.reason))
        return json_response(out)

    async def remote_event(self, request: web.Request, req: s.RemoteEvent) -> web.Response:
        c = self._in(await self.api.ctx(request, outsiders=True), req.tenant)
        svc = self.api.e.sessions
        out = await self.api.r.run(c, f"remote.{req.event}", f"remote:{req.mode}",
                                   lambda: svc.remote_event(c, **req.args()))
        return json_response(out, 201)


S = SessionRoutes
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/sessions", "session.mint", "engine", s.SessionMint, s.SessionMinted, status=201,
          handler=S.mint, feature=S),
    Route("GET", "/v1/sessions", "session.list", "engine", m.Empty, list[s.SessionRow], handler=S.list, feature=S),
    Route("DELETE", "/v1/sessions/{id}", "session.revoke", "engine", s.SessionPath, s.SessionRevoked,
          handler=S.revoke, feature=S),
    Route("POST", "/v1/remote/events", "remote.login", "engine", s.RemoteEvent, s.RemoteEventAudited, status=201,
          handler=S.remote_event, feature=S),
)
