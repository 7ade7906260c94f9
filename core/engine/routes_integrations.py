"""Integrations routes (issue 17): connector settings, connection test, sync jobs, pipeline status.

The work is in :class:`core.integrations.service.IntegrationService` (``engine.integrations``);
each operation checks its permission itself (denials audited) and runs its own ``engine.run``,
so these handlers only build the caller's context.  docs/integrations.md is the user's page.
"""

from __future__ import annotations

from aiohttp import web

from core.api import integrations as i
from core.api.models import Empty
from core.engine.http import Api, json_response
from core.engine.routing import Route


class IntegrationRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def listing(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.listing(c))

    async def configure(self, request: web.Request, req: i.IntegrationSet) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.configure(c, req.system, req.settings, req.secrets,
                                                                     req.unset))

    async def test(self, request: web.Request, req: i.SystemPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.test(c, req.system))

    async def sync(self, request: web.Request, req: i.SyncStart) -> web.Response:
        c = await self.api.ctx(request)
        answer = await self.api.e.integrations.sync_start(c, req.system, req.project_key, req.dry_run,
                                                          req.resolve, req.include)
        return json_response(answer, 202)

    async def notify(self, request: web.Request, req: i.NotifySend) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.notify(c, req.system, req.title, req.text, req.target))

    async def pipelines(self, request: web.Request, req: i.PipelineQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.pipelines(c, req.system, req.ref, req.project_key))


R = IntegrationRoutes
MANAGE = "integrations.manage"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/integrations", "integration.read", MANAGE, Empty, i.Integrations, handler=R.listing, feature=R),
    Route("PUT", "/v1/integrations/{system}", "integration.set", MANAGE, i.IntegrationSet, i.IntegrationSaved,
          handler=R.configure, feature=R),
    Route("POST", "/v1/integrations/{system}/test", "integration.test", MANAGE, i.SystemPath, i.IntegrationTested,
          body=False, handler=R.test, feature=R),
    Route("POST", "/v1/integrations/{system}/notify", "integration.notify", MANAGE, i.NotifySend, i.Notified,
          handler=R.notify, feature=R),
    Route("GET", "/v1/integrations/{system}/pipelines", "integration.read", "specs.read", i.PipelineQuery,
          i.PipelineStatus, handler=R.pipelines, feature=R),
    Route("POST", "/v1/sync/{system}", "job.start", "specs.write", i.SyncStart, i.SyncStarted, status=202,
          handler=R.sync, feature=R),
)
