"""``musubi serve hooks``: the Slack interaction endpoint and the GitLab webhook receiver.

A small aiohttp server, bound to 127.0.0.1 unless told otherwise (put a TLS proxy or
``--cert/--key`` in front of it for Slack and GitLab to reach it), run by the engine's own OS
user.  It does not judge requests itself: it reads each body **raw** and forwards it with the
headers that authenticate it to the engine over its Unix socket (``POST /v1/inbound/slack|gitlab``),
where the signing secret, the webhook token and the replay cache live; the engine answers
who the clicker is and what happened (docs/integrations.md#inbound).

Routes (``TENANT`` defaults to the server's ``--tenant``)::

    POST /slack/interactions[/TENANT]   Slack's "Interactivity Request URL"
    POST /gitlab[/TENANT]               a GitLab project webhook (secret token = webhook_token)
    POST /api/messages[/TENANT]         a Teams bot's messaging endpoint (Bot Connector activities)

Answers: 401 when the engine refused the signature or token (nothing else is said), 400 for
a body that is not what the vendor sends, 200 with the ephemeral message for a Slack click
(also posted to the click's ``response_url`` on hooks.slack.com, which is how Slack shows it),
202 for an accepted GitLab event (200 for a retried one), 503 when the engine is unreachable.
Teams: 401 for a token the engine refused, 403 for a key not endorsed for the channel or a
serviceUrl not allow-listed, else 200 (with the invoke response for an ``Action.Execute``).
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientSession, ClientTimeout, web

from core import names
from core.api import calls
from core.async_client import AsyncEngineClient
from core.errors import BadRequest, MusubiError, PermissionDenied
from core.paths import HomePaths
from core.wire import Identity
from tui.serve.tls import server_context

log = logging.getLogger("musubi.serve.hooks")
MAX_BODY = 1 << 18
SLACK_RESPONSE_PREFIX = "https://hooks.slack.com/"


@dataclass
class HooksOptions:
    host: str = "127.0.0.1"
    port: int = 8787
    tenant: str = "default"
    cert: Path | None = None
    key: Path | None = None
    # where a click's response_url may point (Slack's own host; tests point it at a fake)
    response_prefix: str = SLACK_RESPONSE_PREFIX


class HooksServer:
    """The forwarding server; one engine client per tenant it has seen."""

    def __init__(self, paths: HomePaths, opts: HooksOptions) -> None:
        self.paths, self.opts = paths, opts
        self._clients: dict[str, AsyncEngineClient] = {}
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self.port = opts.port

    def client(self, tenant: str) -> AsyncEngineClient:
        c = self._clients.get(tenant)
        if c is None:
            c = self._clients[tenant] = AsyncEngineClient(self.paths, Identity(tenant=tenant, cwd="/"))
        return c

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        for path in ("/slack/interactions", "/slack/interactions/{tenant}"):
            app.router.add_post(path, self.slack)
        for path in ("/gitlab", "/gitlab/{tenant}"):
            app.router.add_post(path, self.gitlab)
        for path in ("/api/messages", "/api/messages/{tenant}"):  # teams bot (issue 17)
            app.router.add_post(path, self.teams)
        return app

    def _tenant(self, request: web.Request) -> str:
        return names.tenant_name(request.match_info.get("tenant") or self.opts.tenant)

    async def _forward(self, request: web.Request, build: Any) -> tuple[int, dict[str, Any]]:
        try:
            tenant = self._tenant(request)
            raw = await request.read()
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                return 400, {"error": "the body is not UTF-8 text"}
            return 200, dict(await self.client(tenant).call(build(body, request.headers)))
        except web.HTTPRequestEntityTooLarge:
            return 413, {"error": f"the body is larger than {MAX_BODY} bytes"}
        except PermissionDenied as exc:
            log.warning("refused %s: %s", request.path, exc.message)
            if exc.code == "bot_forbidden":
                return 403, {"error": exc.message}
            return 401, {"error": exc.message if exc.code in ("bad_signature", "bad_token") else "refused"}
        except BadRequest as exc:
            return 400, {"error": exc.message}
        except MusubiError as exc:
            log.error("engine error on %s: %s", request.path, exc.message)
            return 503, {"error": "the workstation could not take this request now; retry later"}

    async def slack(self, request: web.Request) -> web.Response:
        status, answer = await self._forward(request, lambda body, h: calls.inbound_slack(
            body, h.get("X-Slack-Request-Timestamp"), h.get("X-Slack-Signature")))
        if status != 200:
            return web.json_response(answer, status=status)
        response = answer.get("response") or {}
        await self._respond(await request.read(), response)
        return web.json_response(response)

    async def _respond(self, raw: bytes, response: dict[str, Any]) -> None:
        """Post the ephemeral answer to the click's response_url (only after the engine verified the click)."""
        try:
            payload = json.loads(parse_qs(raw.decode("utf-8"))["payload"][0])
            url = str(payload.get("response_url") or "")
        except (ValueError, KeyError, UnicodeDecodeError):
            return
        if not url.startswith(self.opts.response_prefix):
            return
        if self._http is None:
            self._http = ClientSession(timeout=ClientTimeout(total=10))
        try:
            async with self._http.post(url, json=response) as resp:
                if resp.status >= 300:
                    log.warning("slack response_url answered %s", resp.status)
        except Exception as exc:  # Slack still got its 200; the clicker just sees no note
            log.warning("could not post to slack response_url: %s", type(exc).__name__)

    async def gitlab(self, request: web.Request) -> web.Response:
        status, answer = await self._forward(request, lambda body, h: calls.inbound_gitlab(
            body, h.get("X-Gitlab-Token"), h.get("X-Gitlab-Event"), h.get("Idempotency-Key")))
        if status == 200 and not answer.get("duplicate"):
            status = 202
        return web.json_response(answer, status=status)

    async def teams(self, request: web.Request) -> web.Response:
        """The Bot Connector's POST: forwarded whole with its Authorization; the engine verifies and replies."""
        status, answer = await self._forward(request, lambda body, h: calls.inbound_teams(
            body, h.get("Authorization")))
        if status != 200:
            return web.json_response(answer, status=status)
        response = answer.get("response") or {}
        return web.json_response(response) if response else web.Response(status=200)

    def ssl_context(self) -> ssl.SSLContext | None:
        return server_context(self.opts.cert, self.opts.key)

    async def start(self) -> None:
        ctx = self.ssl_context()
        await self.client(self.opts.tenant).start()  # start the engine when none runs, as any client would
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.opts.host, self.opts.port, ssl_context=ctx)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise BadRequest(f"cannot listen on {self.opts.host}:{self.opts.port}: {exc.strerror}; choose another "
                             "--port or --host.") from None
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
        for c in self._clients.values():
            await c.close()
