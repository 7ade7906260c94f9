"""A Teams bot (Bot Framework) that posts Adaptive Cards with approve/reject buttons (api-notes §5.3).

Workflows webhooks cannot call back, so the buttons of an approval card need a bot.  Outbound:
a client-credentials token (``scope=https://api.botframework.com/.default``) from the token
endpoint (``bot_token_url``; default the multi-tenant one, or the tenant's with
``bot_tenant_id``), then ``POST {serviceUrl}/v3/conversations/{conversationId}/activities``
with an Adaptive Card 1.4 whose ``Action.Submit`` buttons carry ``{musubi, run, gate,
decision, sha}``.  The token goes **only** to an allow-listed ``serviceUrl`` host
(``bot_service_hosts``): checked before the token is even fetched.  Inbound clicks are
verified by the engine (core/integrations/botauth.py), never here.

The token is cached for the process (:data:`TOKENS`) until shortly before its ``expires_in``
runs out, so a connector built per delivery does not ask the token endpoint every time; a 401
from the Bot Connector drops it and the call is sent once more with a fresh one.

After a decision the card is updated in place (:meth:`BotClient.update`, Update Activity:
``PUT {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}`` with the whole
replacement activity; Bot Connector REST reference).

Settings: ``bot_app_id``, ``bot_service_url``, ``bot_conversation``, ``bot_service_hosts``,
optional ``bot_tenant_id`` / ``bot_token_url``; secret ``bot_app_secret``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connectors.http import AuthError, HttpClient, HttpResponse, RetryPolicy
from core.integrations.botauth import allowed_hosts, service_url_allowed
from core.integrations.contracts import Delivered, IntegrationError, Message

SYSTEM = "teams"
SCOPE = "https://api.botframework.com/.default"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
_COLOURS = {"info": "Default", "good": "Good", "warning": "Warning", "danger": "Attention"}
_STYLE = {"approve": "positive", "reject": "destructive"}
REFRESH_BEFORE_S = 300.0  # renew this long before expires_in runs out (clock skew, a slow call in between)

TokenKey = tuple[str, str, str]  # (token endpoint, app id, sha256 of the secret)


@dataclass(frozen=True)
class _Token:
    value: str
    fresh_until: float  # on the cache's clock (monotonic)


class TokenCache:
    """Bot Framework access tokens, per token endpoint (so per Entra tenant), app id and secret.

    Our own small cache rather than a library's: cachetools (not a dependency) would give only the
    per-entry expiry, not the single fetch per key under asyncio; msal's token cache would do both,
    but its authority must be https with instance discovery, which the Bot Connector fake (and a
    ``bot_token_url`` on a private host) does not offer, and its calls block a thread.  The secret's
    digest is in the key so a tenant that stored a wrong secret never gets a token another tenant's
    right secret obtained.  Locks are per event loop: one cache serves the engine's loop and tests' loops.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, refresh_before_s: float = REFRESH_BEFORE_S) -> None:
        self.clock, self.refresh_before_s = clock, refresh_before_s
        self._tokens: dict[TokenKey, _Token] = {}
        self._locks: dict[TokenKey, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    def _lock(self, key: TokenKey) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        held = self._locks.get(key)
        if held is None or held[0] is not loop:
            held = self._locks[key] = (loop, asyncio.Lock())
        return held[1]

    async def get(self, key: TokenKey, fetch: Callable[[], Awaitable[tuple[str, float | None]]]) -> str:
        """A token still fresh for ``key``, else one ``fetch()`` (token, expires_in seconds) shared by waiters."""
        async with self._lock(key):
            now = self.clock()
            held = self._tokens.get(key)
            if held is not None and now < held.fresh_until:
                return held.value
            token, expires_in = await fetch()
            if expires_in is not None and expires_in > 0:
                # Short lifetimes (a test, an odd endpoint) keep at least half of theirs.
                margin = min(self.refresh_before_s, expires_in / 2)
                self._tokens[key] = _Token(token, self.clock() + expires_in - margin)
            else:  # no lifetime given: not cached (fetched per use, as before the cache)
                self._tokens.pop(key, None)
            return token

    def drop(self, key: TokenKey, token: str) -> None:
        """Forget ``token`` (refused with a 401), unless another call already replaced it."""
        held = self._tokens.get(key)
        if held is not None and held.value == token:
            del self._tokens[key]


TOKENS = TokenCache()  # the process's cache (the engine's): connectors are built per delivery


def gate_data(decision: str, value: str) -> dict[str, str]:
    """What a button submits: a run/gate button's value is ``run|gate|sha256`` (core/integrations/notify.py)."""
    run, _, rest = value.partition("|")
    gate, _, sha = rest.partition("|")
    return {"musubi": "gate", "run": run, "gate": gate, "decision": decision, "sha": sha}


def card(message: Message, actions: list[dict[str, Any]]) -> dict[str, Any]:
    """An Adaptive Card 1.4: title, text, a FactSet, then ``actions`` (what Teams renders as buttons)."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": _COLOURS.get(message.severity, "Default")},
        {"type": "TextBlock", "text": message.text, "wrap": True},
    ]
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.facts]})
    if message.link:
        actions = [*actions, {"type": "Action.OpenUrl", "title": message.link[0], "url": message.link[1]}]
    out: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                           "version": "1.4", "body": body}
    if actions:
        out["actions"] = actions
    return out


def card_activity(message: Message) -> dict[str, Any]:
    """A ``message`` activity carrying the bot's card (:func:`bot_card`): posted, or replacing a posted one."""
    return {"type": "message", "summary": message.title[:200],
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": bot_card(message)}]}


def bot_card(message: Message) -> dict[str, Any]:
    """The bot's card: its buttons are ``Action.Submit`` (approve, reject, request changes) carrying the gate."""
    buttons = list(message.buttons)
    if {"approve", "reject"} <= {b[1] for b in buttons}:
        buttons.append(("Request changes", "request_changes", buttons[0][2]))
    return card(message, [{"type": "Action.Submit", "title": label, "data": gate_data(action, value),
                           **({"style": _STYLE[action]} if action in _STYLE else {})}
                          for label, action, value in buttons[:5]])


class BotClient:
    """Posts and updates activities as the bot; its token comes from :data:`TOKENS`."""

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy,
                 timeout_s: float) -> None:
        self.app_id = str(settings.get("bot_app_id") or "")
        self.secret = secrets.get("bot_app_secret") or ""
        if not self.app_id or not self.secret:
            raise IntegrationError("teams: the bot needs `musubi integrations set teams bot_app_id=APP_ID "
                                   "--secret bot_app_secret`.", kind="config", system=SYSTEM)
        self.hosts = allowed_hosts(settings.get("bot_service_hosts"))
        self.service_url = str(settings.get("bot_service_url") or "")
        self.conversation = str(settings.get("bot_conversation") or "")
        tenant = str(settings.get("bot_tenant_id") or "botframework.com")
        self.token_url = str(settings.get("bot_token_url") or TOKEN_URL.format(tenant=quote(tenant, safe="")))
        if not self.token_url.startswith(("https://", "http://")):
            raise IntegrationError("teams: bot_token_url must be an http(s) URL.", kind="config", system=SYSTEM)
        self.policy, self.timeout_s = policy, timeout_s
        self.auth = HttpClient("teams-bot-auth", None, secrets=[self.secret], timeout_s=timeout_s, policy=policy)
        self.api = HttpClient("teams-bot", None, secrets=[self.secret], timeout_s=timeout_s, policy=policy)
        self.tokens = TOKENS
        self._key: TokenKey = (self.token_url, self.app_id, hashlib.sha256(self.secret.encode()).hexdigest())

    async def close(self) -> None:
        await self.auth.aclose()
        await self.api.aclose()

    def check_service_url(self, url: str) -> str:
        if not service_url_allowed(url, self.hosts):
            raise IntegrationError(f"teams: serviceUrl {url[:200]!r} is not on the allow-list; add its host with "
                                   "`musubi integrations set teams bot_service_hosts=smba.trafficmanager.net`.",
                                   kind="config", system=SYSTEM)
        return url.rstrip("/")

    async def _fetch(self) -> tuple[str, float | None]:
        resp = await self.auth.request("POST", self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.app_id, "client_secret": self.secret,
            "scope": SCOPE}, idempotent=True)  # asking for a token twice does no harm
        data = resp.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise IntegrationError("teams: the token endpoint answered without an access_token.", kind="auth",
                                   system=SYSTEM)
        try:  # Entra sends a number; msal also accepts a string (api-notes §6.3)
            expires_in: float | None = float(data.get("expires_in"))
        except (TypeError, ValueError):
            expires_in = None
        return token, expires_in

    async def _token(self) -> str:
        token = await self.tokens.get(self._key, self._fetch)
        self.api.redactor.add(token)  # sent per request, so the client's redactor learns it here
        return token

    async def check(self) -> None:
        """Get a token (``musubi integrations test teams``): the app id and secret are right."""
        await self._token()

    async def _call(self, method: str, url: str, activity: dict[str, Any]) -> HttpResponse:
        """One Bot Connector call with the cached token; on a 401, a fresh token and one more try.

        Sending again is safe even for a POST: a 401 means the Bot Connector refused it unread.  A
        second 401 is the error (a revoked secret, a bot removed), never a loop.
        """
        token = await self._token()
        try:
            return await self.api.request(method, url, json=activity, headers={"Authorization": f"Bearer {token}"})
        except AuthError as exc:
            if exc.status != 401:
                raise
        self.tokens.drop(self._key, token)
        token = await self._token()
        return await self.api.request(method, url, json=activity, headers={"Authorization": f"Bearer {token}"})

    def _activities(self, service_url: str, conversation: str) -> str:
        base = self.check_service_url(service_url)  # before any token exists: never to another host
        return f"{base}/v3/conversations/{quote(conversation, safe='')}/activities"

    async def post(self, service_url: str, conversation: str, activity: dict[str, Any],
                   reply_to: str | None = None) -> str:
        """POST an activity (to a conversation, or as a reply); the new activity's id."""
        path = self._activities(service_url, conversation)
        if reply_to:
            path += f"/{quote(reply_to, safe='')}"
        resp = await self._call("POST", path, activity)
        data = resp.json() if resp.body else {}
        return str(data.get("id", "")) if isinstance(data, dict) else ""

    async def update(self, service_url: str, conversation: str, activity_id: str, activity: dict[str, Any]) -> str:
        """Replace activity ``activity_id`` (a card the bot posted) with ``activity``: Update Activity (PUT)."""
        path = f"{self._activities(service_url, conversation)}/{quote(activity_id, safe='')}"
        resp = await self._call("PUT", path, {**activity, "id": activity_id})
        data = resp.json() if resp.body else {}
        return str(data.get("id", activity_id)) if isinstance(data, dict) else activity_id

    async def send_card(self, message: Message) -> Delivered:
        if not self.service_url or not self.conversation:
            raise IntegrationError("teams: set where the bot posts: `musubi integrations set teams "
                                   "bot_service_url=URL bot_conversation=ID`.", kind="config", system=SYSTEM)
        aid = await self.post(self.service_url, self.conversation, card_activity(message))
        return Delivered(SYSTEM, f"bot:{self.conversation}", aid)

    async def reply(self, service_url: str, conversation: str, reply_to: str | None, text: str) -> str:
        """A short text reply in the conversation of a click (the confirmation)."""
        return await self.post(service_url, conversation, {"type": "message", "text": text[:2000]}, reply_to)
