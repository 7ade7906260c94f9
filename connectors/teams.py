"""Microsoft Teams: Adaptive Cards to a Workflows webhook; Graph channel messages with a delegated token.

**Workflows webhooks** (the replacement for the retired Office 365 connectors): the URL is
opaque and holds its own ``sig`` (a secret, masked in logs and errors). The card is sent as
``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <AdaptiveCard 1.4>}]}``, already rendered (no ``${...}`` templating).  The answer is
**202 with an empty body**: any 2xx is success (a 202 means accepted; delivery is async).

**Graph** ``POST /v1.0/teams/{team}/channels/{channel}/messages`` needs the *delegated*
permission ``ChannelMessage.Send``: an app-only (client-credentials) token cannot post normal
channel messages (its only application permission is for migration).  This connector sends a
token only if its claims say delegated (``scp``), and refuses an app-only one before any call.
The delegated token comes from the engine's Entra sign-in (``musubi integrations login teams``,
core/integrations/entra.py), which hands it in as ``graph_token``, or is stored by hand.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from typing import Any

from connectors.http import HttpClient, RetryPolicy
from connectors.settings import base_url
from connectors.teamsbot import BotClient, card, card_activity
from core.integrations.botauth import bot_configured
from core.integrations.contracts import Delivered, IntegrationError, Message


def adaptive_card(message: Message) -> dict[str, Any]:
    """A Workflows webhook message: an Adaptive Card 1.4 (title, text, facts, the link as Action.OpenUrl).

    No buttons: a webhook cannot call back (the bot's card has them, connectors/teamsbot.py).
    """
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "contentUrl": None, "content": card(message, [])}]}


def token_kind(token: str) -> str:
    """``delegated`` (an ``scp`` claim), ``app`` (``roles`` without ``scp``) or ``unknown`` (not a JWT)."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return "unknown"
    if not isinstance(claims, dict):
        return "unknown"
    return "delegated" if "scp" in claims else "app" if "roles" in claims else "unknown"


class TeamsConnector:
    """The ``teams`` connector: Notifier (Workflows webhook), plus Graph channel messages."""

    system = "teams"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        self.webhook_url = secrets.get("webhook_url")
        self.graph_token = secrets.get("graph_token")
        has_bot = bool(settings.get("bot_app_id"))
        if not self.webhook_url and not self.graph_token and not has_bot:
            raise IntegrationError("teams: store a Workflows webhook URL (`musubi integrations set teams --secret "
                                   "webhook_url`), a delegated Graph token (`--secret graph_token`) or set up a "
                                   "bot (`bot_app_id=... --secret bot_app_secret`).", kind="config", system=self.system)
        graph = base_url(settings, self.system, "graph_url", "https://graph.microsoft.com",
                         "https://graph.microsoft.com")
        self.team, self.channel = str(settings.get("team") or ""), str(settings.get("channel") or "")
        pol = policy or RetryPolicy()
        self.hook = HttpClient(self.system, None, secrets=[self.webhook_url], timeout_s=timeout_s, policy=pol)
        headers = {"Authorization": f"Bearer {self.graph_token}"} if self.graph_token else {}
        self.graph = HttpClient("teams-graph", graph, headers=headers, secrets=[self.graph_token],
                                timeout_s=timeout_s, policy=pol)
        # teams bot: the Bot Framework bot whose approval cards carry buttons (connectors/teamsbot.py)
        self.bot = BotClient(settings, secrets, policy=pol, timeout_s=timeout_s) if has_bot else None
        self.bot_posts = bot_configured(settings)

    async def close(self) -> None:
        await self.hook.aclose()
        await self.graph.aclose()
        if self.bot is not None:
            await self.bot.close()

    async def test(self) -> dict[str, Any]:
        kind = token_kind(self.graph_token) if self.graph_token else None
        if kind == "app":
            raise IntegrationError("teams: the stored Graph token is app-only; posting channel messages needs a "
                                   "delegated token (ChannelMessage.Send).", kind="auth", system=self.system)
        if self.bot is not None:  # one authenticated call: the bot's client-credentials token
            await self.bot.check()
            if not (self.webhook_url or self.graph_token):
                return {"system": self.system, "account": f"bot {self.bot.app_id}",
                        "note": "token obtained; posting is tested by the first card"}
        return {"system": self.system, "account": "Workflows webhook" if self.webhook_url else "Graph (delegated)",
                "note": "a webhook cannot be tested without posting"}

    async def send(self, message: Message, target: str | None = None) -> Delivered:
        """Post the card to the webhook (or, with ``target="graph"``, to the configured channel via Graph).

        With a bot set up to post (``bot_conversation``), a card with buttons (an approval) goes through
        the bot, whose buttons can call back; so does every card when no webhook or Graph token is stored.
        """
        if self.bot is not None and self.bot_posts and target != "graph" and (
                message.buttons or target == "bot" or not (self.webhook_url or self.graph_token)):
            return await self.bot.send_card(message)
        if target == "graph" or not self.webhook_url:
            return await self.post_channel_message(self.team, self.channel, message)
        resp = await self.hook.request("POST", self.webhook_url, json=adaptive_card(message))
        return Delivered(self.system, "webhook", resp.request_id or "")

    async def post_channel_message(self, team: str, channel: str, message: Message) -> Delivered:
        if not self.graph_token:
            raise IntegrationError("teams: no Graph token stored (`--secret graph_token`, a delegated token).",
                                   kind="config", system=self.system)
        if token_kind(self.graph_token) == "app":
            raise IntegrationError("teams: Graph refuses channel messages from app-only tokens (the only "
                                   "application permission, Teamwork.Migrate.All, is for migration); use a delegated "
                                   "token with ChannelMessage.Send, or a Workflows webhook.", kind="auth",
                                   system=self.system)
        if not team or not channel:
            raise IntegrationError("teams: set the Graph target with `musubi integrations set teams team=ID "
                                   "channel=ID`.", kind="config", system=self.system)
        facts = "".join(f"<br><b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in message.facts)
        link = ""
        if message.link:
            link = f'<br><a href="{html.escape(message.link[1])}">{html.escape(message.link[0])}</a>'
        content = f"<b>{html.escape(message.title)}</b><br>{html.escape(message.text)}{facts}{link}"
        resp = await self.graph.request("POST", f"/v1.0/teams/{team}/channels/{channel}/messages",
                                        json={"body": {"contentType": "html", "content": content}})
        return Delivered(self.system, f"{team}/{channel}", str(resp.json().get("id", "")))


    async def reply(self, service_url: str, conversation: str, reply_to: str | None, text: str) -> str:
        """The bot's short reply to a click (an allow-listed ``service_url`` only); the activity id."""
        if self.bot is None:
            raise IntegrationError("teams: no bot set up (bot_app_id).", kind="config", system=self.system)
        return await self.bot.reply(service_url, conversation, reply_to, text)

    async def update_card(self, service_url: str, conversation: str, activity_id: str, message: Message) -> str:
        """Replace the bot's card ``activity_id`` with ``message`` (no buttons: a decided gate); the id."""
        if self.bot is None:
            raise IntegrationError("teams: no bot set up (bot_app_id).", kind="config", system=self.system)
        return await self.bot.update(service_url, conversation, activity_id, card_activity(message))


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> TeamsConnector:
    """Entry point ``musubi.connectors: teams``."""
    return TeamsConnector(settings, secrets)
