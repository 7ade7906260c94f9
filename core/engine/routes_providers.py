"""Provider routes: ``GET /v1/providers``, ``POST /v1/providers/test``, ``POST /v1/engine/reload``.

The providers are the engine's own (its OS user's keys), so testing them (which spends a
few tokens) and reloading them need the engine's OS user, like ``engine stop``; listing
needs any role in the tenant and never shows a key.  Reload and test are audited in the
``default`` tenant's log with provider names and outcomes only.
"""

from __future__ import annotations

from aiohttp import web

from core.api import models as m
from core.api import providers as p
from core.engine import access
from core.engine.http import Api, json_response
from core.engine.routing import Route
from core.errors import PermissionDenied


class ProviderRoutes:
    """Handlers over ``engine.providers`` (a :class:`core.orchestration.providers.ProviderHub`)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def list(self, request: web.Request, _req: m.Empty) -> web.Response:
        await self.api.ctx(request)
        hub = self.api.e.providers
        pset = hub.current
        answer: p.ProviderList = {
            "providers": pset.list(), "hints": pset.setup_hints(), "config": str(hub.config_path()),
            "config_error": pset.config_error, "generation": pset.generation, "in_flight": pset.in_flight,
        }
        return json_response(answer)

    async def _engine_user(self, request: web.Request, action: str, what: str) -> access.Caller:
        c = await self.api.ctx(request, "default", outsiders=True)

        def op() -> None:
            if not access.is_engine_user(c):
                raise PermissionDenied(f"only the OS user who runs the engine may {what}: the providers and "
                                       "their keys are that user's.", permission="engine")

        await self.api.r.run(c, action, "providers", op)
        return c

    async def test(self, request: web.Request, req: p.ProviderTest) -> web.Response:
        c = await self._engine_user(request, "provider.test", "test the providers")
        results = await self.api.e.providers.current.check(req.name)
        summary = {r["name"]: "ok" if r["ok"] else "failed" for r in results}
        await self.api.r.run(c, "provider.test", "providers",
                             lambda: self.api.r.audit("default", c, "provider.test", "providers", details=summary))
        answer: p.ProviderTested = {"results": results, "ok": all(r["ok"] for r in results)}
        return json_response(answer)

    async def reload(self, request: web.Request, req: p.EngineReload) -> web.Response:
        c = await self._engine_user(request, "engine.reload", "reload the providers")
        hub = self.api.e.providers
        old = hub.current
        new = await hub.reload(req.env)  # a bad config file raises ConfigError: refused, nothing changes
        names = [s.settings.name for s in new.slots]
        details = {"generation": new.generation, "providers": names,
                   "variables": sorted(req.env) if req.env is not None else None}  # names only, never values
        await self.api.r.run(c, "engine.reload", "providers",
                             lambda: self.api.r.audit("default", c, "engine.reload", "providers", details=details))
        answer: p.Reloaded = {"generation": new.generation, "providers": names, "previous_in_flight": old.in_flight}
        return json_response(answer)


P = ProviderRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/providers", "provider.list", "member", m.Empty, p.ProviderList, handler=P.list, feature=P),
    Route("POST", "/v1/providers/test", "provider.test", "engine", p.ProviderTest, p.ProviderTested, handler=P.test,
          feature=P),
    Route("POST", "/v1/engine/reload", "engine.reload", "engine", p.EngineReload, p.Reloaded, handler=P.reload,
          feature=P),
)
