"""Slack: chat.postMessage with Block Kit, incoming webhooks, and signed interactions (api-notes §4).

Outbound: ``chat.postMessage`` (a bot token ``xoxb-…`` as ``Authorization: Bearer``, JSON with
``charset=utf-8``) or an incoming webhook (the URL is the secret).  Slack answers most errors
with **HTTP 200 and ``{"ok": false, "error": code}``**: every Web API answer is checked and
turned into the typed error for its code (auth, not found, validation); ``ok: true`` warnings
are logged.  A 429 is waited for (``Retry-After``) and retried — Slack refused it, so nothing
was posted; any other failure of a post is **not** retried (a timeout may have posted, and
Slack has no de-duplication key).  Webhook errors are plain text with real statuses.

Inbound: :class:`SignatureVerifier` checks ``X-Slack-Signature`` = ``v0=HMAC-SHA256(signing
secret, "v0:" + timestamp + ":" + raw body)`` on the **raw bytes**, in constant time, refuses a
timestamp more than 5 minutes away and a signature already seen (a replay inside the window);
:func:`interactions_app` is the aiohttp endpoint that reads the raw body before anything else,
verifies it, parses the ``payload`` form field and acknowledges at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from connectors.http import (
    AuthError,
    HttpClient,
    HttpResponse,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ValidationError,
)
from connectors.paging import slack_cursor_pages
from connectors.settings import base_url
from core.integrations.contracts import Delivered, IntegrationError, Message
from core.integrations.signing import WINDOW_S, SignatureVerifier

log = logging.getLogger("musubi.connectors.slack")
__all__ = ["WINDOW_S", "SignatureVerifier", "SlackConnector", "blocks", "check_ok", "factory", "interactions_app"]
_AUTH = {"not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive", "no_permission",
         "missing_scope", "not_allowed_token_type"}
_NOT_FOUND = {"channel_not_found", "user_not_found", "message_not_found", "not_in_channel", "is_archived"}
_COLOURS = {"info": "#439FE0", "good": "good", "warning": "warning", "danger": "danger"}


def check_ok(resp: HttpResponse) -> None:
    """Slack's ``ok: false`` on a 200 is a failure: raise the typed error for its code."""
    data = resp.json()
    if not isinstance(data, dict):
        raise ValidationError(f"slack: {resp.url} answered something that is not a Slack answer",
                              connector="slack", status=resp.status, request_id=resp.request_id)
    if data.get("ok"):
        warnings = (data.get("response_metadata") or {}).get("warnings") or []
        if warnings:
            log.info("slack: %s warned %s", resp.url, ", ".join(map(str, warnings)))
        return
    code = str(data.get("error") or "unknown_error")
    cls = AuthError if code in _AUTH else NotFoundError if code in _NOT_FOUND else (
        RateLimitedError if code in ("ratelimited", "rate_limited") else ValidationError)
    raise cls(f"slack: {resp.url} answered ok:false, error {code}"
              + (f" (request id {resp.request_id})" if resp.request_id else ""),
              connector="slack", status=resp.status, request_id=resp.request_id, vendor_text=code)


def blocks(message: Message) -> list[dict[str, Any]]:
    """Block Kit for a :class:`Message`: header, text, facts as fields, buttons, a context link."""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:3000] or " "}},
    ]
    if message.facts:
        out.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                                                  for k, v in message.facts[:10]]})
    if message.buttons:
        out.append({"type": "actions", "block_id": "musubi_actions", "elements": [
            {"type": "button", "action_id": action, "value": value[:2000],
             "text": {"type": "plain_text", "text": label[:75]},
             **({"style": "primary"} if action == "approve" else {"style": "danger"} if action == "reject" else {})}
            for label, action, value in message.buttons[:5]]})
    if message.link:
        label, url = message.link
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|{label}>"}]})
    return out


class SlackConnector:
    """The ``slack`` connector: Notifier (chat.postMessage or an incoming webhook)."""

    system = "slack"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        self.token = secrets.get("token")
        self.webhook_url = secrets.get("webhook_url")
        if not self.token and not self.webhook_url:
            raise IntegrationError("slack: store a bot token (`musubi integrations set slack --secret token`) or an "
                                   "incoming webhook URL (`--secret webhook_url`).", kind="config", system=self.system)
        self.channel = str(settings.get("channel") or "")
        api = base_url(settings, self.system, "api_url", "https://slack.com", "https://slack.com")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        pol = policy or RetryPolicy()
        self.http = HttpClient(self.system, api, headers=headers, secrets=[self.token, self.webhook_url],
                               timeout_s=timeout_s, policy=pol, check=check_ok)
        self.hook = HttpClient("slack-webhook", None, secrets=[self.webhook_url], timeout_s=timeout_s, policy=pol)

    async def close(self) -> None:
        await self.http.aclose()
        await self.hook.aclose()

    async def test(self) -> dict[str, Any]:
        if not self.token:
            return {"system": self.system, "account": "incoming webhook (not testable without posting)"}
        me = (await self.http.request("POST", "/api/auth.test", json={})).json()
        return {"system": self.system, "account": me.get("user"), "team": me.get("team")}

    async def channels(self, max_items: int = 1000) -> list[dict[str, Any]]:
        return [{"id": c["id"], "name": c.get("name"), "archived": bool(c.get("is_archived"))}
                async for c in slack_cursor_pages(self.http, "conversations.list",
                                                  {"limit": 200, "exclude_archived": "false"}, "channels",
                                                  max_items=max_items)]

    async def post_message(self, channel: str, text: str, blocks_: list[dict[str, Any]] | None = None,
                           thread_ts: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": channel, "text": text}  # text: the notification fallback
        if blocks_:
            body["blocks"] = blocks_
        if thread_ts:
            body["thread_ts"] = thread_ts
        resp = await self.http.request("POST", "/api/chat.postMessage", json=body,
                                       headers={"Content-Type": "application/json; charset=utf-8"})
        return dict(resp.json())

    async def post_webhook(self, text: str, blocks_: list[dict[str, Any]] | None = None) -> None:
        if not self.webhook_url:
            raise IntegrationError("slack: no incoming webhook URL stored (`--secret webhook_url`).",
                                   kind="config", system=self.system)
        body: dict[str, Any] = {"text": text, **({"blocks": blocks_} if blocks_ else {})}
        await self.hook.request("POST", self.webhook_url, json=body)

    async def send(self, message: Message, target: str | None = None) -> Delivered:
        fallback = f"{message.title}: {message.text}"[:3000]
        channel = target or self.channel
        if target == "webhook" or not self.token or (not channel and self.webhook_url):
            await self.post_webhook(fallback, blocks(message))
            return Delivered(self.system, "webhook")
        if not channel:
            raise IntegrationError("slack: no channel given and no 'channel' setting "
                                   "(`musubi integrations set slack channel=C0123`).", kind="config",
                                   system=self.system)
        answer = await self.post_message(channel, fallback, blocks(message))
        return Delivered(self.system, str(answer.get("channel", channel)), str(answer.get("ts", "")))


# -- interactions (Slack -> us) -----------------------------------------------------------------


def interactions_app(verifier: SignatureVerifier,
                     on_action: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]) -> web.Application:
    """``POST /slack/interactions``: raw body first, then the signature, then the ``payload`` field.

    401 for a refused signature (nothing is parsed), 400 for a body that is not an interaction,
    else the answer of ``on_action(payload)`` (or an empty 200: the acknowledgement).
    """

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()  # before any parsing: re-encoding a parsed form would break the HMAC
        why = verifier.check(raw, request.headers)
        if why is not None:
            return web.json_response({"error": why}, status=401)
        try:
            fields = parse_qs(raw.decode("utf-8"), strict_parsing=True)
            payload = json.loads(fields["payload"][0])
        except (UnicodeDecodeError, ValueError, KeyError):
            return web.json_response({"error": "expected a form with a JSON 'payload' field"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return web.json_response({"error": "the payload has no 'type'"}, status=400)
        answer = await on_action(payload)
        return web.json_response(answer or {}, status=200)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/slack/interactions", handle)
    return app


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> SlackConnector:
    """Entry point ``musubi.connectors: slack``."""
    return SlackConnector(settings, secrets)
