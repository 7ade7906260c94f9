"""Code index and search routes: ``POST /v1/index``, ``GET /v1/index/status``, ``POST /v1/search(/batch)``.

All under the caller's tenant and project (``X-Musubi-Project``, the client's working directory,
or for ``POST /v1/index`` an absolute ``path`` inside a registered project).  Starting an index
needs ``index.build`` (audited ``job.start``, docs/jobs.md); status and search need
``search.query`` at the project's scope (a denial is audited).  The work is in
:class:`core.rag.service.IndexService`, which this feature creates when the app is built (so its
job kind is registered before the engine resumes interrupted jobs) and hangs on the engine as
``engine.code_index`` for other features (context packs) to call.
"""

from __future__ import annotations

from aiohttp import web

from core.api import models as m
from core.api import responses as a
from core.engine.http import Api, json_response
from core.engine.routes_scope import project_caller
from core.engine.routing import Route
from core.rag.service import KIND, IndexService


class IndexRoutes:
    """Handlers over one :class:`IndexService` per engine."""

    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def svc(self) -> IndexService:
        return self.api.e.code_index

    async def close(self, _app: web.Application) -> None:
        # Running index jobs first become interrupted (they resume at the next start); only then
        # does the worker stop, so a graceful stop never fails a job for want of its worker.
        await self.api.e.jobs.close()
        await self.svc.close()

    async def start(self, request: web.Request, req: m.IndexStart) -> web.Response:
        c, project = await project_caller(self.api, request, "index.build", "job.start", req.path)
        active = self.svc._active_job(c.tenant, project)
        if active is not None:  # one index job per project: answer the one already running
            return json_response({"job": active.as_json(self.api.r.now())}, 202)
        job = await self.api.e.jobs.submit(c, KIND, {"force": req.force}, project=project)
        return json_response({"job": job}, 202)

    async def status(self, request: web.Request, req: m.Empty) -> web.Response:
        c, project = await project_caller(self.api, request, "search.query", "search.query")
        return json_response(await self.svc.status(c.tenant, project))

    async def search(self, request: web.Request, req: m.SearchQuery) -> web.Response:
        c, project = await project_caller(self.api, request, "search.query", "search.query")
        return json_response(await self.svc.answer(c.tenant, project, req.query, req.k,
                                                   {"path": req.path, "lang": req.lang}))

    async def batch(self, request: web.Request, req: m.SearchBatch) -> web.Response:
        c, project = await project_caller(self.api, request, "search.query", "search.query")
        filters = {"path": req.path, "lang": req.lang}
        answers = [await self.svc.answer(c.tenant, project, q, req.k, filters) for q in req.queries]
        return json_response({"answers": answers})


X = IndexRoutes
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/index", "job.start", "index.build", m.IndexStart, a.IndexStarted, status=202,
          handler=X.start, feature=X),
    Route("GET", "/v1/index/status", "search.query", "search.query", m.Empty, a.IndexStatus,
          handler=X.status, feature=X),
    Route("POST", "/v1/search", "search.query", "search.query", m.SearchQuery, a.SearchAnswer,
          handler=X.search, feature=X),
    Route("POST", "/v1/search/batch", "search.query", "search.query", m.SearchBatch, a.SearchBatchAnswer,
          handler=X.batch, feature=X),
)
