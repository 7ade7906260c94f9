"""The engine's HTTP application: JSON over a Unix socket (aiohttp), versioned under ``/v1/``.

The caller is the OS user on the other end of the socket (SO_PEERCRED); the
client's headers choose only tenant, project and an ``--as`` impersonation,
which is itself permission-checked.  This module only assembles the app:

- ``http.py``: plumbing (peer credentials, error middleware, strict JSON bodies,
  the caller's context, export streaming);
- ``routing.py``: what a route is and how a table becomes handlers;
- ``routes.py``, ``routes_trace.py``, ``routes_models.py``, ``routes_jobs.py``: the route tables
  (request and response models in ``core/api/models.py``);
- ``stream.py``: the server-sent event stream.

Every route is documented in docs/api.md (tests/docs/test_api_routes.py checks it).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from core.engine import (
    routes,
    routes_context,
    routes_index,
    routes_integrations,
    routes_jobs,
    routes_models,
    routes_providers,
    routes_runs,
    routes_sessions,
    routes_trace,
    routes_tune_embed,
    routes_tune_provider,
    routes_tutorials,
)
from core.engine.engine import Engine
from core.engine.http import ENGINE_KEY, MAX_BODY, STOP_KEY, Api, errors_middleware
from core.engine.routing import Route, install
from core.identity import routes as routes_sso

# Every route of the API, in registration order (the first matching resource wins).
TABLES: tuple[tuple[Route, ...], ...] = (
    routes.ROUTES, routes_trace.ROUTES, routes_models.ROUTES, routes_jobs.ROUTES, routes_index.ROUTES,
    routes_context.ROUTES, routes_providers.ROUTES, routes_sso.ROUTES, routes_runs.ROUTES,
    routes_sessions.ROUTES,
    routes_integrations.ROUTES,  # integrations (issue 17)
    routes_tutorials.ROUTES,  # tutorials (issue 18)
    routes_tune_provider.ROUTES,  # provider fine-tuning (issue 19)
    routes_tune_embed.ROUTES,  # local embedder tuning (issue 19)
)


def all_routes() -> list[Route]:
    """Every route of the engine API."""
    return [r for table in TABLES for r in table]


def build_app(engine: Engine, stop: asyncio.Event) -> web.Application:
    """The engine's aiohttp application: every route of :data:`TABLES`, the error middleware, the caps."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[ENGINE_KEY] = engine
    app[STOP_KEY] = stop

    async def close_streams(_app: web.Application) -> None:
        # Before the server waits for open handlers: end every stream with its reason.
        engine.runner.bus.close_all("engine_stopping", "the engine is stopping; reconnect once it runs again.")

    app.on_shutdown.append(close_streams)
    install(app, Api(engine, stop), TABLES)
    return app
