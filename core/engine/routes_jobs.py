"""Background job routes: ``/v1/jobs`` (list, show, start, cancel).

The work is in :class:`core.jobs.service.JobService` (``engine.jobs``); these
handlers only build the caller's context.  Reading needs any role covering the
job's scope (a tenant-scope role, or one on the job's project); a job the caller
cannot see, another tenant's included, is a 404.  Starting needs the kind's
permission at the scope of the request's project; cancelling needs that
permission at the job's scope, or being the job's creator (docs/rbac.md#jobs).
"""

from __future__ import annotations

from aiohttp import web

from core.api import models as m
from core.api import responses as a
from core.engine.http import Api, json_response
from core.engine.routing import Route


class JobRoutes:
    """Handlers over ``engine.jobs``."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def list(self, request: web.Request, req: m.JobsQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.jobs.list(c, req.state, req.kind, req.limit))

    async def show(self, request: web.Request, req: m.JobPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.jobs.show(c, req.id))

    async def start(self, request: web.Request, req: m.JobStart) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.jobs.submit(c, req.kind, req.params, project=c.project, api=True), 201)

    async def cancel(self, request: web.Request, req: m.JobPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.jobs.cancel(c, req.id))


J = JobRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/jobs", "job.list", "member", m.JobsQuery, list[a.Job], handler=J.list, feature=J),
    Route("POST", "/v1/jobs", "job.start", "member", m.JobStart, a.Job, status=201, handler=J.start, feature=J),
    Route("GET", "/v1/jobs/{id}", "job.show", "member", m.JobPath, a.Job, handler=J.show, feature=J),
    Route("POST", "/v1/jobs/{id}/cancel", "job.cancel", "member", m.JobPath, a.Job, body=False,
          handler=J.cancel, feature=J),
)
