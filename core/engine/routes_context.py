"""``POST /v1/context``: the best code of the project for a task, packed into a model's token budget.

The route searches the project's code index (:class:`core.rag.service.IndexService`, ``engine.code_index``)
for the task text, then packs the hits with :func:`core.rag.context.pack`, counting tokens as the
model's tokenizer does (exact for OpenAI's encodings, the calibrated estimate otherwise; the
registry of the caller's tenant names the model).  It needs ``search.query`` at the project's scope
(a denial is audited).  Its handler is bound to :class:`core.engine.routes_models.ModelRoutes`, whose
registry, pinned-model list and clock it shares; the cost estimate's retrieval budget calls
:func:`context_pack` too (docs/models.md "Retrieval context").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from core.api import models as m
from core.api import responses as a
from core.engine.http import json_response
from core.engine.routes_models import ModelRoutes
from core.engine.routing import Route
from core.errors import NotFound

if TYPE_CHECKING:
    from core.engine.engine import Engine
    from core.models.registry import ModelSpec
    from core.rag.context import ContextPack


CONTEXT_K = 20  # search results a pack is made from when the caller does not say


def no_project(tenant: str) -> NotFound:
    return NotFound(f"no project: run inside a registered project of tenant {tenant!r}, pass one with --project, "
                    "or register it with: musubi project add PATH", resource="project")


async def context_pack(e: Engine, tenant: str, project: str, spec: ModelSpec, *, task: str, budget: int, k: int,
                       filters: dict[str, str | None] | None = None, min_score: float | None = None) -> ContextPack:
    """Search ``project`` for ``task`` and pack the ``k`` best hits into ``budget`` tokens of ``spec``."""
    from core.rag.context import check_budget
    from core.rag.context_io import counter_for, pack_from_files

    check_budget(budget)  # before any search: a refused request does no work
    hits = await e.code_index.search(tenant, project, task, k, filters or {})
    root = e.runner.state.projects[tenant][project]["path"]
    return await asyncio.to_thread(pack_from_files, root, hits, budget=budget, model=spec.id,
                                   count=counter_for(spec), min_score=min_score)


async def context(mr: ModelRoutes, request: web.Request, req: m.ContextRequest) -> web.Response:
    """``POST /v1/context`` (see the module docstring)."""
    r = mr.api.r
    c = await mr.api.ctx(request)
    spec = mr.registry(c.tenant).get(req.model)  # unknown: 404 unknown_model with close names
    spec.check_usable(mr.today())
    allowed = await mr.allowed(c.tenant)
    project = c.project

    def check() -> None:
        r.require(c, "search.query", project=project, read=True)
        mr._check_allowed(c, [spec.id], allowed)

    await r.run(c, "context.pack", f"project:{project or '-'}", check)
    if project is None:
        raise no_project(c.tenant)
    p = await context_pack(mr.api.e, c.tenant, project, spec, task=req.task, budget=req.budget, k=req.k,
                           filters={"path": req.path, "lang": req.lang}, min_score=req.min_score)
    return json_response({"task": req.task, "project": project, "exact": spec.exact_tokens,
                          "tokenizer": spec.tokenizer, **p.to_json()})


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/context", "context.pack", "search.query", m.ContextRequest, a.ContextPack,
          handler=context, feature=ModelRoutes),
)
