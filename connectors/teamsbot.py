"""A Teams bot (Bot Framework) that posts Adaptive Cards with approve/reject buttons (api-notes §5.3).

Workflows webhooks cannot call back, so the buttons of an approval card need a bot.  Outbound:
a client-credentials token (``scope=https://api.botframework.com/.default``) from the token
endpoint (``bot_token_url``; default the multi-tenant one, or the tenant's with
``bot_tenant_id``), then ``POST {serviceUrl}/v3/conversations/{conversationId}/activities``
with an Adaptive Card 1.4 whose ``Action.Submit`` buttons carry ``{musubi, run, gate,
decision, sha}``.  The token goes **only** to an allow-listed ``serviceUrl`` host
(``bot_service_hosts``): checked before the token is even fetched.  Inbound clicks are
verified by the engine (core/integrations/botauth.py), never here.

Settings: ``bot_app_id``, ``bot_service_url``, ``bot_conversation``, ``bot_service_hosts``,
optional ``bot_tenant_id`` / ``bot_token_url``; secret ``bot_app_secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connectors.http import HttpClient, RetryPolicy
from core.integrations.botauth import allowed_hosts, service_url_allowed
from core.integrations.contracts import Delivered, IntegrationError, Message

SYSTEM = "teams"
SCOPE = "https://api.botframework.com/.default"
TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
_COLOURS = {"info": "Default", "good": "Good", "warning": "Warning", "danger": "Attention"}
_STYLE = {"approve": "positive", "reject": "destructive"}


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


def bot_card(message: Message) -> dict[str, Any]:
    """The bot's card: its buttons are ``Action.Submit`` (approve, reject, request changes) carrying the gate."""
    buttons = list(message.buttons)
    if {"approve", "reject"} <= {b[1] for b in buttons}:
        buttons.append(("Request changes", "request_changes", buttons[0][2]))
    return card(message, [{"type": "Action.Submit", "title": label, "data": gate_data(action, value),
                           **({"style": _STYLE[action]} if action in _STYLE else {})}
                          for label, action, value in buttons[:5]])


class BotClient:
    """Posts activities as the bot; one token per connector (a connector lives for one delivery)."""

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
        self._api: HttpClient | None = None

    async def close(self) -> None:
        await self.auth.aclose()
        if self._api is not None:
            await self._api.aclose()

    def check_service_url(self, url: str) -> str:
        if not service_url_allowed(url, self.hosts):
            raise IntegrationError(f"teams: serviceUrl {url[:200]!r} is not on the allow-list; add its host with "
                                   "`musubi integrations set teams bot_service_hosts=smba.trafficmanager.net`.",
                                   kind="config", system=SYSTEM)
        return url.rstrip("/")

    async def _client(self) -> HttpClient:
        if self._api is None:
            resp = await self.auth.request("POST", self.token_url, data={
                "grant_type": "client_credentials", "client_id": self.app_id, "client_secret": self.secret,
                "scope": SCOPE}, idempotent=True)  # asking for a token twice does no harm
            data = resp.json()
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise IntegrationError("teams: the token endpoint answered without an access_token.", kind="auth",
                                       system=SYSTEM)
            self._api = HttpClient("teams-bot", None, headers={"Authorization": f"Bearer {token}"},
                                   secrets=[self.secret], timeout_s=self.timeout_s, policy=self.policy)
        return self._api

    async def check(self) -> None:
        """Get a token (``musubi integrations test teams``): the app id and secret are right."""
        await self._client()

    async def post(self, service_url: str, conversation: str, activity: dict[str, Any],
                   reply_to: str | None = None) -> str:
        """POST an activity (to a conversation, or as a reply); the new activity's id."""
        base = self.check_service_url(service_url)  # before any token exists: never to another host
        path = f"{base}/v3/conversations/{quote(conversation, safe='')}/activities"
        if reply_to:
            path += f"/{quote(reply_to, safe='')}"
        api = await self._client()
        resp = await api.request("POST", path, json=activity)
        data = resp.json() if resp.body else {}
        return str(data.get("id", "")) if isinstance(data, dict) else ""

    async def send_card(self, message: Message) -> Delivered:
        if not self.service_url or not self.conversation:
            raise IntegrationError("teams: set where the bot posts: `musubi integrations set teams "
                                   "bot_service_url=URL bot_conversation=ID`.", kind="config", system=SYSTEM)
        activity = {"type": "message", "summary": message.title[:200],
                    "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                     "content": bot_card(message)}]}
        aid = await self.post(self.service_url, self.conversation, activity)
        return Delivered(SYSTEM, f"bot:{self.conversation}", aid)

    async def reply(self, service_url: str, conversation: str, reply_to: str | None, text: str) -> str:
        """A short text reply in the conversation of a click (the confirmation)."""
        return await self.post(service_url, conversation, {"type": "message", "text": text[:2000]}, reply_to)
