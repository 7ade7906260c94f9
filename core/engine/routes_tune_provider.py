"""Provider fine-tuning routes (issue 19): ``/v1/tune/datasets`` and ``/v1/tune/jobs``.

The work is in :class:`core.finetune.service.ProviderTuning` (``engine.tune_provider``).
Building a dataset needs ``runs.start`` at the request's scope (it reads the runs there);
submitting and cancelling need ``quotas.manage`` (they spend money and add a model to the
tenant's registry; cancelling your own job's engine job is also allowed, as for any job);
reading needs any role covering the job's scope.  docs/finetune.md is the user's page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.api import tune as t
from core.engine.http import Api, json_response
from core.engine.routes_models import ModelRoutes
from core.engine.routing import Route


class TuneRoutes:
    """Handlers over ``engine.tune_provider``; hands the service the tenants' registries."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.models = ModelRoutes(api)
        svc = getattr(api.e, "tune_provider", None)  # None in tests that build the app over a stand-in engine
        if svc is not None:
            svc.registry = self.models.registry

    @property
    def svc(self) -> Any:
        return self.api.e.tune_provider

    async def dataset(self, request: web.Request, req: t.TuneDatasetBuild) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.dataset(c, req.base_model, req.epochs), 201)

    async def submit(self, request: web.Request, req: t.TuneSubmit) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.submit(c, **req.args()), 201)

    async def list(self, request: web.Request, req: t.TuneList) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.status(c, None, req.limit))

    async def show(self, request: web.Request, req: t.TunePath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.status(c, req.id))

    async def cancel(self, request: web.Request, req: t.TunePath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.cancel(c, req.id))


T = TuneRoutes
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/tune/datasets", "tune.dataset", "runs.start", t.TuneDatasetBuild, t.TuneDataset, status=201,
          handler=T.dataset, feature=T),
    Route("POST", "/v1/tune/jobs", "tune.submit", "quotas.manage", t.TuneSubmit, t.TuneJob, status=201,
          handler=T.submit, feature=T),
    Route("GET", "/v1/tune/jobs", "tune.list", "member", t.TuneList, t.TuneJobs, handler=T.list, feature=T),
    Route("GET", "/v1/tune/jobs/{id}", "tune.show", "member", t.TunePath, t.TuneJobs, handler=T.show, feature=T),
    Route("POST", "/v1/tune/jobs/{id}/cancel", "tune.cancel", "member", t.TunePath, t.TuneJob, body=False,
          handler=T.cancel, feature=T),
)
