"""A Teams fake: a Workflows (Power Automate) webhook and Graph channel messages (api-notes §5).

Workflows: ``POST /workflows/{id}/triggers/manual/paths/invoke?...&sig=...`` answers **202 with an
empty body** (delivery is asynchronous); a wrong ``sig`` is a 401 with a JSON error; a payload
that is not a message with an Adaptive Card attachment is a 400.  Graph: ``POST
/v1.0/teams/{t}/channels/{c}/messages`` answers 201 with a chatMessage for a delegated token
(``scp`` claim) and 403 for an app-only token (``roles`` claim, no ``scp``): application
permission covers migration only.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer, json_error


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT-shaped token (the fake reads its claims; signatures are Entra's business)."""
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def claims_of(token: str) -> dict[str, Any]:
    try:
        body = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    except (IndexError, ValueError):
        return {}


class TeamsFake(FakeServer):
    def __init__(self, sig: str = "SIGsecretSIGsecret") -> None:
        super().__init__()
        self.sig = sig
        self.cards: list[dict[str, Any]] = []
        self.graph_messages: list[dict[str, Any]] = []
        r = self.app.router
        r.add_post("/workflows/{wf}/triggers/manual/paths/invoke", self._workflow)
        r.add_post("/v1.0/teams/{team}/channels/{channel}/messages", self._graph)

    @property
    def webhook_url(self) -> str:
        return (f"{self.url}/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-10-01&sp=%2Ftriggers"
                f"%2Fmanual%2Frun&sv=1.0&sig={self.sig}")

    async def _workflow(self, request: web.Request) -> web.Response:
        if request.query.get("sig") != self.sig:
            return json_error(401, {"error": {"code": "DirectApiAuthorizationRequired",
                                              "message": "The request must be authenticated only by Shared Access "
                                                         "scheme."}})
        try:
            data = json.loads(await request.read())
        except ValueError:
            return json_error(400, {"error": {"code": "InvalidRequestContent", "message": "The request content is "
                                              "not valid and could not be deserialized."}})
        atts = data.get("attachments") if isinstance(data, dict) else None
        ok = (isinstance(atts, list) and atts and all(
            a.get("contentType") == "application/vnd.microsoft.card.adaptive"
            and (a.get("content") or {}).get("type") == "AdaptiveCard" for a in atts))
        if data.get("type") != "message" or not ok:
            return json_error(400, {"error": {"code": "InvalidTemplate", "message": "Unable to process template "
                                              "language expressions: the payload is not an Adaptive Card message."}})
        self.cards.append(data)
        return web.Response(status=202)  # empty body: accepted, delivered later

    async def _graph(self, request: web.Request) -> web.Response:
        token = bearer(request)
        claims = claims_of(token or "")
        rid = {"date": "2026-01-01T00:00:00", "request-id": "req-1", "client-request-id": "creq-1"}
        if not claims:
            return json_error(401, {"error": {"code": "InvalidAuthenticationToken",
                                              "message": "Access token is empty.", "innerError": rid}},
                              headers={"request-id": "req-1"})
        if "scp" not in claims:
            return json_error(403, {"error": {"code": "Forbidden", "message": "Missing role permissions on the "
                                              "request. API requires one of 'Teamwork.Migrate.All'.",
                                              "innerError": rid}}, headers={"request-id": "req-1"})
        data = json.loads(await request.read())
        msg = {"id": str(1700000000000 + len(self.graph_messages)), "messageType": "message", "body": data["body"],
               "channelIdentity": {"teamId": request.match_info["team"], "channelId": request.match_info["channel"]}}
        self.graph_messages.append(msg)
        return web.json_response(msg, status=201)
