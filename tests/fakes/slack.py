"""A Slack Web API + incoming-webhook fake (api-notes/connectors.md §4).

``POST /api/chat.postMessage`` takes JSON or a form (a ``token`` form field is allowed);
errors are HTTP 200 with ``{"ok": false, "error": code}`` (``not_authed``, ``invalid_auth``,
``channel_not_found``, ``no_text``, ``invalid_blocks``, ``msg_too_long``); success carries
``ts`` as a string.  ``missing_charset`` comes back as a warning for JSON without a charset.
``GET /api/conversations.list`` pages by ``cursor`` / ``response_metadata.next_cursor`` (empty
string when done).  ``POST /services/T/B/X`` is an incoming webhook: ``ok`` as plain text, or a
plain-text error with a real status (400 ``invalid_payload``/``no_text``, 404
``channel_not_found``, 410 ``channel_is_archived``).  Rate limits: ``fake.rate_limit()`` gives a
429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer


class SlackFake(FakeServer):
    def __init__(self, token: str = "xoxb-1-SECRETsecretSECRET", channels: int = 5,
                 hook: str = "/services/T000/B000/XXXXSECRETXXXX") -> None:
        super().__init__()
        self.token, self.hook = token, hook
        self.channels = [{"id": f"C{n:04d}", "name": f"chan-{n}", "is_archived": n == 3}
                         for n in range(1, channels + 1)]
        self.messages: list[dict[str, Any]] = []
        self.hook_messages: list[dict[str, Any]] = []
        r = self.app.router
        r.add_post("/api/chat.postMessage", self._post_message)
        r.add_route("*", "/api/auth.test", self._auth_test)
        r.add_get("/api/conversations.list", self._list)
        r.add_post("/services/{t}/{b}/{x}", self._webhook)

    def rate_limit(self, times: int = 1, retry_after: str = "0") -> None:
        self.fail(429, headers={"Retry-After": retry_after}, body={"ok": False, "error": "ratelimited"}, times=times)

    async def _args(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        warning = None
        if request.content_type == "application/json":
            if "charset" not in request.headers.get("Content-Type", "").lower():
                warning = "missing_charset"
            data = json.loads(await request.read() or b"{}")
        else:
            data = dict(await request.post())
            if isinstance(data.get("blocks"), str):
                try:
                    data["blocks"] = json.loads(data["blocks"])
                except ValueError:
                    data["blocks"] = "not json"
        return data, warning

    def _authed(self, request: web.Request, data: dict[str, Any]) -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else data.get("token")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        return None

    async def _auth_test(self, request: web.Request) -> web.Response:
        denied = self._authed(request, {})
        return web.json_response(denied or {"ok": True, "url": "https://acme.slack.com/", "team": "Acme",
                                            "user": "musubi", "team_id": "T000", "user_id": "U000", "bot_id": "B000"})

    async def _post_message(self, request: web.Request) -> web.Response:
        data, warning = await self._args(request)
        denied = self._authed(request, data)
        if denied:
            return web.json_response(denied)
        channel = data.get("channel")
        if not any(c["id"] == channel or c["name"] == channel for c in self.channels):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        blocks = data.get("blocks")
        if blocks is not None and (not isinstance(blocks, list) or any(not isinstance(b, dict) or "type" not in b
                                                                       for b in blocks)):
            return web.json_response({"ok": False, "error": "invalid_blocks"})
        if not data.get("text") and not blocks and not data.get("attachments"):
            return web.json_response({"ok": False, "error": "no_text"})
        if len(str(data.get("text") or "")) > 40_000:
            return web.json_response({"ok": False, "error": "msg_too_long"})
        ts = f"{time.time():.6f}"
        msg = {"type": "message", "text": data.get("text"), "ts": ts, "bot_id": "B000", "blocks": blocks}
        self.messages.append({"channel": channel, **msg})
        out: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": msg}
        if warning:
            out.update(warning=warning, response_metadata={"warnings": [warning]})
        return web.json_response(out)

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._authed(request, {})
        if denied:
            return web.json_response(denied)
        limit = max(1, min(int(request.query.get("limit", 100)), 1000))
        start = int(request.query.get("cursor") or 0)
        page = self.channels[start:start + limit]
        nxt = str(start + limit) if start + limit < len(self.channels) else ""
        return web.json_response({"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt}})

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.path != self.hook:
            return web.Response(status=404, text="no_service")
        try:
            data = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(data, dict):
            return web.Response(status=400, text="invalid_payload")
        if not data.get("text") and not data.get("blocks"):
            return web.Response(status=400, text="no_text")
        self.hook_messages.append(data)
        return web.Response(status=200, text="ok")
