"""Model routes: ``/v1/models...`` (registry, allowed set, router) and ``/v1/cost/...``.

The registry is the shipped data merged with the engine user's ``config.toml``
(re-read when the file changes; a broken file is a 400 naming the problem on
every models route until it is fixed), then with the imported overrides
(``musubi models import``: the owner's, then the tenant's; routes in
``routes_models_import.py``).  Lifecycle status is decided by the engine's date:
the router never picks a retired model and an estimate naming one is refused.
Tenant admins pin the models a tenant may use (``PUT /v1/models/allowed``, needs
``quotas.manage``, audited); the pin is enforced here: an estimate naming a
model outside it is refused (403, audited) and the router never picks one.

Reads need ``quotas.read`` (estimates show quota headroom).  The engine reads the
files an estimate names: absolute paths inside a registered project of the
tenant where the caller may read, resolved through symlinks first and readable
by the calling OS user, or anywhere for the OS user who runs the engine acting as
themself (``access.is_engine_user``: who could read them anyway).  Counting and the ledger query run in worker threads; exact counts of
unchanged files are cached in memory.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from core.api import models as m
from core.api import responses as a
from core.engine import access
from core.engine.access import Caller
from core.engine.http import Api
from core.engine.http import json_response as _json
from core.engine.routes_models_import import import_table
from core.engine.routing import Route
from core.errors import BadRequest, PermissionDenied
from core.models.estimate import estimate, load_workflows, single_step, workflow
from core.models.files import CachedCounter, read_files, text_documents
from core.models.history import RatioStats, ledger_rows, output_ratios
from core.models.overrides import OverrideStore
from core.models.registry import Registry, check_task, load_registry, read_config
from core.models.router import route
from core.models.tokens import CountCache
from core.paths import os_identity, readable_by
from core.storage.base import Delete, Insert

HISTORY_DAYS = 180
HISTORY_TTL_S = 30.0


class ModelRoutes:
    """Handlers plus the state they share: registry, allowed sets, count cache, history cache."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._regs: dict[str | None, tuple[Any, Registry]] = {}
        self._overrides: OverrideStore | None = None
        self._allowed: dict[str, set[str]] | None = None
        self._history: dict[str, tuple[float, dict[tuple[str, str], RatioStats]]] = {}
        self.counts = CountCache()
        usage = getattr(api.e, "usage", None)  # None in tests that build the app over a stand-in engine
        if usage is not None and usage.registry is None:  # usage posted without a cost is priced by it
            usage.registry = self.registry

    # -- shared state ---------------------------------------------------------------------

    @staticmethod
    def config_path() -> Path:
        from core.paths import config_dir

        return config_dir() / "config.toml"

    @property
    def overrides(self) -> OverrideStore:
        """The imported registry overrides of this engine's home (made on first use)."""
        if self._overrides is None:
            self._overrides = OverrideStore(self.api.r.paths.home)
        return self._overrides

    def today(self) -> date:
        """The date lifecycle statuses are decided by (the engine's clock)."""
        return self.api.r.now().date()

    def registry(self, tenant: str | None = None) -> Registry:
        """The registry of ``tenant`` (None: without tenant overrides), reloaded when a source file changes."""
        if tenant is not None and self.overrides.stamp("tenant", tenant) is None:
            # No overrides of its own: the shared one, loaded once rather than once per tenant (usage posted
            # without a cost is priced per request, across every tenant).
            return self.registry(None)
        p = self.config_path()
        try:
            st = p.stat()
            cfg: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            cfg = None
        stamp = (cfg, self.overrides.stamp("user"), self.overrides.stamp("tenant", tenant) if tenant else None)
        hit = self._regs.get(tenant)
        if hit is None or hit[0] != stamp:
            self._regs.pop(tenant, None)
            overlays = [(str(self.overrides.path("user")), self.overrides.read("user")["entries"])]
            if tenant is not None:
                overlays.append((str(self.overrides.path("tenant", tenant)),
                                 self.overrides.read("tenant", tenant)["entries"]))
            reg = load_registry(read_config(p), p, overlays)
            self._regs[tenant] = hit = (stamp, reg)
        return hit[1]

    def _load_allowed(self) -> dict[str, set[str]]:
        con = getattr(self.api.r.storage, "con", None)
        out: dict[str, set[str]] = {}
        if con is None:
            return out
        cur = con.cursor()
        try:
            for tenant, model in cur.execute("SELECT tenant_id, model_id FROM tenant_models").fetchall():
                out.setdefault(tenant, set()).add(model)
        finally:
            cur.close()
        return out

    async def allowed(self, tenant: str) -> set[str] | None:
        """The tenant's pinned model ids, or None when every model is allowed."""
        if self._allowed is None:
            self._allowed = await self.api.r.read(self._load_allowed)
        s = self._allowed.get(tenant)
        return set(s) if s else None

    async def history(self, tenant: str) -> dict[tuple[str, str], RatioStats]:
        hit = self._history.get(tenant)
        if hit and time.monotonic() - hit[0] < HISTORY_TTL_S:
            return hit[1]
        since = self.api.r.now() - timedelta(days=HISTORY_DAYS)
        rows = await self.api.r.read(ledger_rows, self.api.r.storage, tenant, since)
        stats = output_ratios(rows, self.registry(tenant))
        self._history[tenant] = (time.monotonic(), stats)
        return stats

    def quotas(self, c: Caller) -> list[dict[str, Any]]:
        """The caller's applicable quotas with what remains now (cost in micro-dollars)."""
        st = self.api.r.state
        now = self.api.r.now()
        out = []
        for q in st.applicable_quotas(c.tenant, c.user):
            used, reserved, _ws = st.usage_for(q, now)
            out.append({"id": q.id, "metric": q.metric, "period": q.period, "scope": q.scope, "user": q.user,
                        "limit": q.limit, "remaining": max(q.limit - used - reserved, 0)})
        return out

    async def _read_ctx(self, request: web.Request, action: str, resource: str) -> Caller:
        e = self.api.r
        c = await self.api.ctx(request)
        await e.run(c, action, resource, lambda: e.require(c, "quotas.read", project=c.project, read=True))
        return c

    # -- registry -------------------------------------------------------------------------

    async def list_models(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self._read_ctx(request, "models.list", "models")
        reg = self.registry(c.tenant)
        allowed = await self.allowed(c.tenant)
        today = self.today()
        models = [{**x.as_json(today), "allowed": allowed is None or x.id in allowed} for x in reg.all()]
        return _json({"tenant": c.tenant, "models": models, "allowed": sorted(allowed) if allowed else None,
                      "config": str(self.config_path()), "today": today.isoformat()})

    async def show_model(self, request: web.Request, req: m.ModelId) -> web.Response:
        c = await self._read_ctx(request, "models.show", f"model:{req.id}")
        model = self.registry(c.tenant).get(req.id)
        allowed = await self.allowed(c.tenant)
        return _json({**model.as_json(self.today()), "allowed": allowed is None or model.id in allowed})

    # -- the tenant's allowed set ---------------------------------------------------------

    async def get_allowed(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self._read_ctx(request, "models.allowed", "models")
        allowed = await self.allowed(c.tenant)
        return _json({"tenant": c.tenant, "allowed": sorted(allowed) if allowed else None})

    async def put_allowed(self, request: web.Request, req: m.AllowedSet) -> web.Response:
        c = await self.api.ctx(request)
        reg = self.registry(c.tenant)
        ids = sorted({reg.get(n).id for n in req.models})  # unknown names: 404 with close matches, nothing changed
        return _json(await self._set_allowed(c, ids))

    async def delete_allowed(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self.api.ctx(request)
        return _json(await self._set_allowed(c, None))

    async def _set_allowed(self, c: Caller, ids: list[str] | None) -> dict[str, Any]:
        e = self.api.r
        previous = await self.allowed(c.tenant)
        action = "models.allow" if ids else "models.allow_all"

        def op() -> dict[str, Any]:
            e.require(c, "quotas.manage")
            now = e.now()
            e.write(Delete("tenant_models", {"tenant_id": c.tenant}))
            for mid in ids or []:
                e.write(Insert("tenant_models", {"tenant_id": c.tenant, "model_id": mid, "added_at": now, "added_by": c.user}))
            e.audit(c.tenant, c, action, "models", details={"models": ids, "previous": sorted(previous) if previous else None})
            return {"tenant": c.tenant, "allowed": ids, "previous": sorted(previous) if previous else None}

        result = await e.run(c, action, "models", op)
        assert self._allowed is not None  # loaded by self.allowed() above
        if ids:
            self._allowed[c.tenant] = set(ids)
        else:
            self._allowed.pop(c.tenant, None)
        return result

    def _check_allowed(self, c: Caller, model_ids: list[str], allowed: set[str] | None) -> None:
        if allowed is None:
            return
        bad = [m for m in model_ids if m not in allowed]
        if bad:
            raise PermissionDenied(
                f"model(s) {', '.join(bad)} not allowed in tenant {c.tenant!r}; allowed: {', '.join(sorted(allowed))}. "
                "A tenant admin can change this with: musubi models allowed set MODEL ...",
                code="model_not_allowed", permission="models.allowed", models=bad,
            )

    # -- router ---------------------------------------------------------------------------

    async def route_task(self, request: web.Request, req: m.RouteTask) -> web.Response:
        c = await self._read_ctx(request, "models.route", f"task:{req.task}")
        task = check_task(req.task)
        d = route(self.registry(c.tenant), task, req.input_tokens, allowed=await self.allowed(c.tenant),
                  history=await self.history(c.tenant), kind=req.kind, today=self.today())
        return _json(d.as_json())

    # -- cost -----------------------------------------------------------------------------

    def spec_dirs(self, c: Caller) -> dict[str, str | None]:
        """Where the caller's own agents and workflows live: the project's ``.musubi/`` and the user config dir."""
        from core.config import config_dir

        root = self.api.r.state.projects.get(c.tenant, {}).get(c.project or "", {}).get("path")
        return {"project_root": root, "user_dir": str(config_dir())}

    async def workflows(self, request: web.Request, _req: m.Empty) -> web.Response:
        c = await self._read_ctx(request, "cost.workflows", "workflows")
        wfs = await asyncio.to_thread(load_workflows, **self.spec_dirs(c))
        return _json({"workflows": [
            {"name": w.name, "description": w.description, "steps": [s.task for s in w.steps]}
            for w in wfs.values()
        ]})

    async def cost_estimate(self, request: web.Request, req: m.CostEstimate) -> web.Response:
        e = self.api.r
        c = await self.api.ctx(request)
        reg = self.registry(c.tenant)
        today = self.today()
        models = list({x.id: x for x in (reg.get(n) for n in req.models)}.values())
        for x in models:
            x.check_usable(today)  # a retired model: refused, its replacement named, nothing counted
        allowed = await self.allowed(c.tenant)
        paths, wf, task = req.paths, req.workflow, req.task
        steps = (list((await asyncio.to_thread(workflow, str(wf), **self.spec_dirs(c))).steps) if wf
                 else single_step(str(task or "implementation")))
        retrieval: int | dict[str, int] = req.retrieval_tokens
        cache = req.cache
        docs_text = text_documents(req.texts)
        ids = [m.id for m in models]

        def check() -> None:
            e.require(c, "quotas.read", project=c.project, read=True)
            if req.retrieval_task is not None:  # the pack searches the project's code
                e.require(c, "search.query", project=c.project, read=True)
            self._check_allowed(c, ids, allowed)
            files[:] = self._check_paths(c, paths)

        files: list[Any] = []
        await e.run(c, "cost.estimate", f"models:{','.join(ids)}", check)
        packs: dict[str, Any] = {}
        if req.retrieval_task is not None:
            retrieval = await self._retrieval(c, models, str(req.retrieval_task), int(req.retrieval_budget), packs)
        quotas = self.quotas(c)
        history = await self.history(c.tenant)

        def work() -> dict[str, Any]:
            fs = read_files(files)
            if files and not fs.docs:
                # Every named file was skipped: an estimate of the prompts alone would mislead.
                raise BadRequest("none of the given files can be counted: " + "; ".join(
                    f"{s['name']}: {s['reason']}" for s in fs.skipped) + ". Give text files.",
                    field="paths", code="no_countable_files", skipped=fs.skipped)
            docs = fs.docs + docs_text
            out = estimate(reg, models, docs, steps, counter=CachedCounter(self.counts, fs.keys), history=history,
                           retrieval_tokens=retrieval, cache=cache, quotas=quotas, today=today)
            out["skipped"] = fs.skipped
            return out

        result = await asyncio.to_thread(work)
        result.update({"tenant": c.tenant, "user": c.user, "workflow": wf, "task": None if wf else steps[0].task,
                       "history_samples": sum(s.n for s in history.values())})
        if packs:
            result["retrieval"] = {"task": req.retrieval_task, "budget": req.retrieval_budget, "models": packs}
        return _json(result)

    async def _retrieval(self, c: Caller, models: list[Any], task: str, budget: int,
                         packs: dict[str, Any]) -> dict[str, int]:
        """Retrieval tokens per model from an actual context pack of ``task`` (docs/models.md "Retrieval context")."""
        from core.engine.routes_context import CONTEXT_K, context_pack, no_project

        if c.project is None:
            raise no_project(c.tenant)
        out: dict[str, int] = {}
        for x in models:
            p = await context_pack(self.api.e, c.tenant, c.project, x, task=task, budget=budget, k=CONTEXT_K)
            out[x.id] = p.used
            packs[x.id] = {"used": p.used, "included": len(p.blocks), "omitted": len(p.omitted),
                           "files": sorted({b.path for b in p.blocks})}
        return out

    def _check_paths(self, c: Caller, paths: list[Any]) -> list[Any]:
        """The files to read, resolved; refuses any the caller may not have read.

        Each path is judged by where it really leads (symlinks resolved): it must lie in
        a registered project where the caller holds 'quotas.read' (a project role counts
        for its own project only) and be readable by the caller, the OS user on the
        socket, by its mode bits.  The engine's own OS user, acting as themself, may name
        any file (it could read it anyway).  The resolved paths are what gets read.
        """
        e = self.api.r
        out: list[Any] = []
        engine_user = access.is_engine_user(c)
        ident = None if engine_user else os_identity(c.real_user)
        for p in paths:
            if not (isinstance(p, str) and os.path.isabs(p)):
                out.append(p)  # read_files names the problem
                continue
            if engine_user:
                out.append(p)
                continue
            proj, real = access.project_of_path(e.state, c.tenant, p)
            out.append(real)
            leads = f" (it leads to {real})" if real != os.path.normpath(p) else ""
            if proj is None or "quotas.read" not in e.perms(c, proj):
                raise PermissionDenied(
                    f"permission denied: {p} is not inside a registered project of tenant {c.tenant!r} "
                    f"that you may read{leads}; register it with: musubi project add PATH, or send the text instead.",
                    permission="quotas.read",
                )
            if os.path.exists(real) and (ident is None or not readable_by(real, *ident)):
                raise PermissionDenied(
                    f"permission denied: {c.real_user} cannot read {p}{leads} (by its mode bits), so the engine "
                    "will not read it for you either; send the text instead.",
                    permission="quotas.read",
                )
        return out


M = ModelRoutes
# /v1/models/allowed, /route and /import come before /v1/models/{id}: the first matching resource wins.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/models", "models.list", "quotas.read", response=a.ModelList,
          handler=M.list_models, feature=M),
    Route("GET", "/v1/models/allowed", "models.allowed", "quotas.read", response=a.Allowed,
          handler=M.get_allowed, feature=M),
    Route("PUT", "/v1/models/allowed", "models.allow", "quotas.manage", m.AllowedSet, a.Allowed,
          handler=M.put_allowed, feature=M),
    Route("DELETE", "/v1/models/allowed", "models.allow_all", "quotas.manage", response=a.Allowed,
          handler=M.delete_allowed, feature=M),
    Route("POST", "/v1/models/route", "models.route", "quotas.read", m.RouteTask, a.Routed,
          handler=M.route_task, feature=M),
    Route("POST", "/v1/models/import", "models.import", "quotas.manage", m.ModelsImport, a.Imported,
          handler=import_table, feature=M),
    Route("GET", "/v1/models/{id:.+}", "models.show", "quotas.read", m.ModelId, a.ModelEntry,
          handler=M.show_model, feature=M),
    Route("GET", "/v1/cost/workflows", "cost.workflows", "quotas.read", response=a.Workflows,
          handler=M.workflows, feature=M),
    Route("POST", "/v1/cost/estimate", "cost.estimate", "quotas.read", m.CostEstimate, a.Estimate,
          handler=M.cost_estimate, feature=M),
)
