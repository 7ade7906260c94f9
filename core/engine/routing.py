"""Declarative routes: what a route is (:class:`Route`) and how a table becomes aiohttp handlers.

A route says its method and path, the audited action and the permission it
needs, its request model (``core/api/models.py``: body, query and path
parameters, validated before anything else happens), its response shape, and
either the engine operation it calls or, for the few routes that stream or
need more than one operation, a handler of its own.  The generic handler is::

    request model ← body (POST/PUT) or query, plus path parameters
    ctx           ← the caller (core/engine/http.py)
    answer        ← runner.run(ctx, action, resource, lambda: op(ctx, **request.args()))

``op`` names a service's method, ``"<service>.<method>"`` (``"tenancy.tenant_create"``):
resolved once, when the app is built (``Engine.operation``), so a typo fails the start.

Route tables: ``routes.py`` (engine, tenancy, quotas and usage, audit, events),
``routes_trace.py`` and ``routes_models.py``; ``server.py`` installs them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from aiohttp import web

from core.api.models import Empty, Request, parse
from core.engine.http import Api, body, json_response

# A route's own handler: (feature object, aiohttp request, the parsed request model).
Handler = Callable[[Any, web.Request, Any], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One route of the engine API (docs/api.md documents each; tests/docs checks it)."""

    method: str
    path: str
    # The action audited (a denial, and the write itself); for routes whose operation
    # audits several actions itself (``run=False``), the main one.
    action: str
    # What the caller needs: a permission name, or "open" (anyone), "member" (any role in
    # the tenant), "system" (a system owner), "engine" (the OS user running the engine).
    permission: str
    request: type[Request] = Empty
    # The answer: a TypedDict of core/api/models.py or responses.py (or a list of one);
    # responses.Streamed when the route streams file content or events, not JSON.
    response: Any = None
    op: str | None = None  # "<service>.<method>" of the Engine, called as op(ctx, **request.args())
    resource: str | Callable[[Any], str] = ""  # the audited resource, fixed or from the request
    status: int = 200
    outsiders: bool = False  # the context may be built for someone with no role in the tenant
    run: bool = True  # False: the operation is async and runs its own engine.run
    body: bool | None = None  # read a JSON body (default: POST and PUT)
    handler: Handler | None = None  # instead of op: handler(feature, request)
    feature: type = Api  # the object a handler is bound to, made once per app from the Api

    def reads_body(self) -> bool:
        return self.body if self.body is not None else self.method in ("POST", "PUT")


async def request_of(route: Route, request: web.Request) -> Any:
    """The route's request model, from the body or query plus the path parameters."""
    data: dict[str, Any] = await body(request) if route.reads_body() else dict(request.query)
    if request.match_info:
        data.update(request.match_info)
    return parse(route.request, data)


def _op_handler(route: Route, api: Api) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    action, resource, status = route.action, route.resource, route.status
    op, runner = api.e.operation(str(route.op)), api.r  # resolved once, here

    async def handle(request: web.Request) -> web.StreamResponse:
        req = await request_of(route, request)
        c = await api.ctx(request, outsiders=route.outsiders)
        args = req.args()
        if not route.run:  # the operation checks and audits itself (some are sync reads)
            out = op(c, **args)
            return json_response(await out if isawaitable(out) else out, status)
        res = resource if isinstance(resource, str) else resource(req)
        return json_response(await runner.run(c, action, res, lambda: op(c, **args)), status)

    return handle


def install(app: web.Application, api: Api, tables: Iterable[Iterable[Route]]) -> None:
    """Add every route of ``tables`` to ``app``; handlers are bound to one object per feature class."""
    features: dict[type, Any] = {Api: api}
    for table in tables:
        for route in table:
            if route.handler is not None:
                feature = features.get(route.feature)
                if feature is None:
                    feature = features[route.feature] = route.feature(api)
                    close = getattr(feature, "close", None)
                    if close is not None:  # a feature that holds resources (e.g. trace's file watchers)
                        app.on_cleanup.append(close)
                handle = _own_handler(route, route.handler, feature)
            else:
                handle = _op_handler(route, api)
            if route.method == "GET":
                app.router.add_get(
                    route.path, handle
                )  # with its HEAD twin, as aiohttp does for every GET
            else:
                app.router.add_route(route.method, route.path, handle)


def _own_handler(
    route: Route, handler: Handler, feature: Any
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(feature, request, await request_of(route, request))

    return handle
