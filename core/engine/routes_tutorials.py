"""Tutorial routes (issue 18): ``/v1/tutorials`` over :class:`core.engine.tutorials.TutorialService`.

Every route is ``open``: any signed-in user runs tutorials on their own progress and sandbox (no
role in the request's tenant is needed, and none of it is written there).  The service runs its
own ops; these handlers build the caller's context and hand the service :meth:`TutorialRoutes.probe`,
which reads an engine GET route as the user in the sandbox tenant and project, in-process: the
request goes through the same handler, request model and access checks as one over the socket
(docs/tutorials.md, "State checks").
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from core.api import tutorials as tq
from core.api.models import Empty
from core.engine.http import Api, _peer_of, json_response
from core.engine.routing import Route
from core.errors import BadRequest, MusubiError, NotFound

# Routes a check may not read: streams (events, exports) and the tutorials themselves (no loops).
UNREADABLE = ("/v1/events", "/v1/tutorials")


class _Peer:
    """The transport of an in-process probe: its peer is the user whose sandbox it is (see ``peer_user``)."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False


async def probe(app: web.Application, sandbox: dict[str, Any], user: str, route: str,
                query: dict[str, str]) -> Any:
    """GET ``route`` as ``user`` in the sandbox tenant and project; the JSON answer, or the MusubiError refusing it."""
    # imported only when a check runs: not on the engine's start path
    from aiohttp.test_utils import make_mocked_request

    if not route.startswith("/v1/") or route.startswith(UNREADABLE) or route.endswith("/export"):
        raise BadRequest(f"a tutorial check cannot read {route}: it must be a GET route of the engine answering "
                         "JSON (not a stream, an export or a tutorial route).", field="route")
    url = route + ("?" + urlencode(query) if query else "")
    headers = {"X-Musubi-Tenant": sandbox["tenant"], "X-Musubi-Project": sandbox["project"],
               "X-Musubi-Cwd": sandbox["path"]}
    peer = _Peer()
    _peer_of[peer] = user
    sub = make_mocked_request("GET", url, headers=headers, app=app, transport=peer)
    match = await app.router.resolve(sub)
    if match.http_exception is not None:
        raise NotFound(f"no engine route GET {route} (the tutorial names a route that does not exist).")
    sub = make_mocked_request("GET", url, headers=headers, app=app, transport=peer, match_info=dict(match))
    try:
        resp = await match.handler(sub)
    except web.HTTPException as exc:
        raise MusubiError(f"GET {route} answered {exc.status}: {exc.reason}") from None
    if not isinstance(resp, web.Response) or not isinstance(resp.body, bytes):
        raise BadRequest(f"GET {route} does not answer JSON; a tutorial check cannot read it.", field="route")
    data = json.loads(resp.body)
    if resp.status >= 400:
        err = data.get("error", {}) if isinstance(data, dict) else {}
        raise MusubiError(str(err.get("message") or f"status {resp.status}"))
    return data


class TutorialRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def _probe(self, request: web.Request) -> Any:
        return partial(probe, request.app)

    async def listing(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.listing(c))

    async def show(self, request: web.Request, req: tq.TutorialPath) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.show(c, req.id))

    async def progress(self, request: web.Request, req: tq.TutorialPath) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.progress_of(c, req.id))

    async def start(self, request: web.Request, req: tq.TutorialPath) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.start(c, req.id, self._probe(request)))

    async def check(self, request: web.Request, req: tq.StepRequest) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.check(c, req.id, req.step, self._probe(request)))

    async def complete(self, request: web.Request, req: tq.StepRequest) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.complete_step(c, req.id, req.step, self._probe(request)))

    async def skip(self, request: web.Request, req: tq.StepRequest) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.skip(c, req.id, req.step, self._probe(request)))

    async def reset(self, request: web.Request, req: tq.TutorialPath) -> web.Response:
        c = await self.api.ctx(request, outsiders=True)
        return json_response(await self.api.e.tutorials.reset(c, req.id))


R = TutorialRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/tutorials", "tutorial.list", "open", Empty, list[tq.TutorialSummary], handler=R.listing,
          feature=R, outsiders=True),
    Route("GET", "/v1/tutorials/{id}", "tutorial.show", "open", tq.TutorialPath, tq.TutorialShown, handler=R.show,
          feature=R, outsiders=True),
    Route("GET", "/v1/tutorials/{id}/progress", "tutorial.progress", "open", tq.TutorialPath, tq.Progress,
          handler=R.progress, feature=R, outsiders=True),
    Route("POST", "/v1/tutorials/{id}/start", "tutorial.start", "open", tq.TutorialPath, tq.Started, body=False,
          handler=R.start, feature=R, outsiders=True),
    Route("POST", "/v1/tutorials/{id}/check", "tutorial.check", "open", tq.StepRequest, tq.Checked,
          handler=R.check, feature=R, outsiders=True),
    Route("POST", "/v1/tutorials/{id}/complete", "tutorial.step", "open", tq.StepRequest, tq.StepDone,
          handler=R.complete, feature=R, outsiders=True),
    Route("POST", "/v1/tutorials/{id}/skip", "tutorial.skip", "open", tq.StepRequest, tq.StepDone,
          handler=R.skip, feature=R, outsiders=True),
    Route("POST", "/v1/tutorials/{id}/reset", "tutorial.reset", "open", tq.TutorialPath, tq.ResetDone, body=False,
          handler=R.reset, feature=R, outsiders=True),
)
