"""Local embedder tuning routes (issue 19): ``/v1/tune/embedders`` (list, train), ``.../activate``, ``.../rollback``,
``DELETE .../{version}``.

All under the caller's tenant and project (``X-Musubi-Project`` or the client's working directory).
Listing needs ``search.query`` at the project's scope; training, activating and rolling back need
``embedder.tune`` there (a denial is audited; starting a job is audited ``job.start``, docs/jobs.md), as does
deleting a version (audited ``tune.delete``).
The work is in :class:`core.tune.service.TuneEmbedService` (``engine.tune_embed``), created with the
engine so its job kinds are registered before interrupted jobs resume.  Docs: docs/finetune.md.
"""

from __future__ import annotations

from aiohttp import web

from core.api import models as m
from core.api import tune_embed as t
from core.engine.http import Api, json_response
from core.engine.routes_scope import project_caller
from core.engine.routing import Route
from core.tune.service import PERMISSION, TuneEmbedService


class TuneEmbedRoutes:
    """Handlers over the engine's :class:`TuneEmbedService`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def svc(self) -> TuneEmbedService:
        return self.api.e.tune_embed

    async def list(self, request: web.Request, req: m.Empty) -> web.Response:
        c, project = await project_caller(self.api, request, "search.query", "tune.list")
        return json_response(await self.svc.list(c, project))

    async def train(self, request: web.Request, req: t.TuneEmbedStart) -> web.Response:
        c, project = await project_caller(self.api, request, PERMISSION, "job.start")
        return json_response(await self.svc.train(c, project, req.budget_s), 202)

    async def activate(self, request: web.Request, req: t.TuneEmbedActivate) -> web.Response:
        c, project = await project_caller(self.api, request, PERMISSION, "job.start")
        return json_response(await self.svc.activate(c, project, req.version), 202)

    async def rollback(self, request: web.Request, req: m.Empty) -> web.Response:
        c, project = await project_caller(self.api, request, PERMISSION, "job.start")
        return json_response(await self.svc.rollback(c, project), 202)

    async def delete(self, request: web.Request, req: t.TuneEmbedDelete) -> web.Response:
        c, project = await project_caller(self.api, request, PERMISSION, "tune.delete")
        return json_response(await self.svc.delete(c, project, req.version))


X = TuneEmbedRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/tune/embedders", "tune.list", "search.query", m.Empty, t.TunedEmbedders,
          handler=X.list, feature=X),
    Route("POST", "/v1/tune/embedders", "job.start", PERMISSION, t.TuneEmbedStart, t.TuneEmbedStarted, status=202,
          handler=X.train, feature=X),
    Route("POST", "/v1/tune/embedders/activate", "job.start", PERMISSION, t.TuneEmbedActivate, t.TuneEmbedActivating,
          status=202, handler=X.activate, feature=X),
    Route("POST", "/v1/tune/embedders/rollback", "job.start", PERMISSION, m.Empty, t.TuneEmbedActivating,
          status=202, handler=X.rollback, feature=X),
    Route("DELETE", "/v1/tune/embedders/{version}", "tune.delete", PERMISSION, t.TuneEmbedDelete, t.TuneEmbedDeleted,
          handler=X.delete, feature=X),
)
