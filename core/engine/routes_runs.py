"""Orchestration run routes: ``/v1/runs`` (start, list, show, cancel, resume, approve, reject,
request_changes, apply, logs) over :class:`core.orchestration.service.RunService` (``engine.runs``).

Reading needs any role covering the run's scope (a tenant-scope role, or one on the run's
project); a run the caller cannot see, another tenant's included, is a 404.  Starting and
resuming need ``runs.start``, cancelling ``runs.cancel`` (or being the run's creator), answering
a gate and applying a diff ``runs.approve`` (docs/rbac.md).  Routes on one run are listed as
``member``: the run's own project decides, so the operation checks the permission there (after
finding the run: a run the caller cannot see is a 404, not a 403).  docs/runs.md is the user's page.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from core.api import runs as rq
from core.api.models import Empty
from core.engine.http import Api, json_response
from core.engine.routes_models import ModelRoutes
from core.engine.routing import Route

ALLOWED_TTL_S = 2.0


class RunRoutes:
    """Handlers over ``engine.runs``; hands the service the registry and the tenants' allowed models."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.models = ModelRoutes(api)
        self._allowed: tuple[float, dict[str, set[str]]] | None = None
        self._allowed_lock = asyncio.Lock()
        svc = getattr(api.e, "runs", None)  # None in tests that build the app over a stand-in engine
        if svc is not None:
            svc.registry = self.models.registry
            svc.allowed = self.allowed

    @property
    def svc(self) -> Any:
        return self.api.e.runs

    async def allowed(self, tenant: str) -> set[str] | None:
        """The tenant's allowed models (a run attempt reads them once, when it starts).

        Read from the database at most every ALLOWED_TTL_S, one read at a time: a read waits until
        DuckDB holds every acknowledged write, which under load took long enough to serialise the
        starts of concurrent runs (benchmarks/bench_runs.py).  A change reaches new attempts within
        that time."""
        now = time.monotonic()
        if self._allowed is None or now - self._allowed[0] > ALLOWED_TTL_S:
            async with self._allowed_lock:
                if self._allowed is None or time.monotonic() - self._allowed[0] > ALLOWED_TTL_S:
                    rows = await self.api.r.read(self.models._load_allowed)
                    self._allowed = (time.monotonic(), rows)
        s = self._allowed[1].get(tenant)
        return set(s) if s else None

    async def start(self, request: web.Request, req: rq.RunStart) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.start(c, **req.args()), 201)

    async def list(self, request: web.Request, req: rq.RunsQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(self.svc.list(c, req.state, req.limit))

    async def show(self, request: web.Request, req: rq.RunPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.show(c, req.id))

    async def cancel(self, request: web.Request, req: rq.RunPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.cancel(c, req.id))

    async def resume(self, request: web.Request, req: rq.RunResume) -> web.Response:
        c = await self.api.ctx(request)
        args = req.args()
        return json_response(await self.svc.resume(c, args.pop("id"), **args))

    async def _decide(self, request: web.Request, req: rq.RunDecide, decision: str) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.decide(c, req.id, decision, req.gate, req.comment, req.shown_sha256))

    async def approve(self, request: web.Request, req: rq.RunDecide) -> web.Response:
        return await self._decide(request, req, "approve")

    async def reject(self, request: web.Request, req: rq.RunDecide) -> web.Response:
        return await self._decide(request, req, "reject")

    async def request_changes(self, request: web.Request, req: rq.RunDecide) -> web.Response:
        return await self._decide(request, req, "request_changes")

    async def apply(self, request: web.Request, req: rq.RunApply) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.apply(c, req.id, req.artefact))

    async def logs(self, request: web.Request, req: rq.RunLogsQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.logs(c, req.id, req.after, req.limit))

    # -- runs gaps: output so far, retry one step, latency per tenant, the audit-text switch --

    async def output(self, request: web.Request, req: rq.RunStepQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.output_of(c, req.id, req.step))

    async def retry(self, request: web.Request, req: rq.RunRetry) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.svc.retry(c, req.id, req.step))

    async def stats(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(self.svc.latency_stats(c))

    async def settings(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.r.run(c, "run.settings.show", "run_settings",
                                                  lambda: self.svc.settings_show(c)))

    async def settings_set(self, request: web.Request, req: rq.RunSettingsSet) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.r.run(c, "run.settings", "run_settings",
                                                  lambda: self.svc.settings_set(c, req.audit_text)))


R = RunRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/runs", "run.list", "member", rq.RunsQuery, list[rq.Run], handler=R.list, feature=R),
    Route("POST", "/v1/runs", "run.start", "runs.start", rq.RunStart, rq.Run, status=201, handler=R.start, feature=R),
    Route("GET", "/v1/runs/{id}", "run.show", "member", rq.RunPath, rq.RunShown, handler=R.show, feature=R),
    Route("GET", "/v1/runs/{id}/logs", "run.logs", "member", rq.RunLogsQuery, rq.RunLogs, handler=R.logs, feature=R),
    Route("POST", "/v1/runs/{id}/cancel", "run.cancel", "member", rq.RunPath, rq.Run, body=False,
          handler=R.cancel, feature=R),
    Route("POST", "/v1/runs/{id}/resume", "run.resume", "member", rq.RunResume, rq.Run, handler=R.resume,
          feature=R),
    Route("POST", "/v1/runs/{id}/approve", "run.approve", "member", rq.RunDecide, rq.RunDecided,
          handler=R.approve, feature=R),
    Route("POST", "/v1/runs/{id}/reject", "run.reject", "member", rq.RunDecide, rq.RunDecided,
          handler=R.reject, feature=R),
    Route("POST", "/v1/runs/{id}/request_changes", "run.request_changes", "member", rq.RunDecide,
          rq.RunDecided, handler=R.request_changes, feature=R),
    Route("POST", "/v1/runs/{id}/apply", "run.apply", "member", rq.RunApply, rq.RunApplied, handler=R.apply,
          feature=R),
    # -- runs gaps (issue 12): output so far, retry one step, provider latency per tenant, audit text switch
    Route("GET", "/v1/runs/{id}/output", "run.output", "member", rq.RunStepQuery, rq.RunOutput, handler=R.output,
          feature=R),
    Route("POST", "/v1/runs/{id}/retry", "run.retry", "member", rq.RunRetry, rq.RunRetried, handler=R.retry,
          feature=R),
    Route("GET", "/v1/providers/stats", "provider.stats", "member", Empty, list[rq.ProviderLatency],
          handler=R.stats, feature=R),
    Route("GET", "/v1/run-settings", "run.settings.show", "member", Empty, rq.RunSettings, handler=R.settings,
          feature=R),
    Route("PUT", "/v1/run-settings", "run.settings", "tenant.manage", rq.RunSettingsSet, rq.RunSettings,
          handler=R.settings_set, feature=R),
)
