"""A Bot Framework fake: the Bot Connector a Teams bot talks to, and the signer of what it sends us (api-notes §5.3).

Served (on 127.0.0.1, like every fake):

- ``GET /v1/.well-known/openidconfiguration``: issuer ``https://api.botframework.com``, ``jwks_uri``;
- ``GET /v1/.well-known/keys``: its RSA public key with ``endorsements`` (``["msteams"]``);
- ``POST /{tenant}/oauth2/v2.0/token``: client credentials for ``scope=https://api.botframework.com/.default``
  (``invalid_client`` with an AADSTS text for a wrong secret);
- ``POST /v3/conversations/{conversation}/activities[/{replyTo}]``: the bearer must be a token it issued
  and has not revoked (401 ``Authorization has been denied for this request.`` otherwise); the activity
  is recorded, ``201 {"id"}``;
- ``PUT /v3/conversations/{conversation}/activities/{activityId}`` (Update Activity, Bot Connector REST
  reference, MicrosoftDocs/bot-docs ``bot-framework-rest-connector-api-reference.md``): replaces an
  activity the bot posted, ``200 {"id"}``.  Errors as the Bot Connector sends them, an ``ErrorResponse``
  ``{"error": {"code", "message"}}`` (bodies as quoted in microsoft/BotFramework-Services#269): 404
  ``ConversationNotFound`` *Conversation not found.*; 404 ``ActivityNotFoundInConversation`` *Message does
  not exist in the thread.* (an unknown id, or not the bot's message: a bot cannot edit a user's); 403
  ``ServiceError`` *Unknown* for a message since deleted (``deleted``).

Token lifetime: ``expires_in`` (seconds, default 3599 as Entra answers); :meth:`revoke` makes every
token issued so far answer 401 (an expired or rotated token), ``deny_all`` makes every token do so.

:meth:`BotFrameworkFake.sign` makes the RS256 JWT the Bot Connector puts in ``Authorization`` of an
activity it POSTs to the bot; its arguments break one check at a time (issuer, audience, expiry,
``serviceUrl``, the key).  :func:`submit_activity` is a click on an ``Action.Submit`` button in Teams.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.base import FakeServer, bearer, json_error

ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class BotFrameworkFake(FakeServer):
    def __init__(self, app_id: str = "8e1a2f6c-0000-4000-8000-00000000b07a",
                 app_secret: str = "bot-SECRET-value-~abc123") -> None:
        super().__init__()
        self.app_id, self.app_secret = app_id, app_secret
        self.kid = "fake-kid-1"
        self.key = _private_key()
        self.other_key = _private_key()  # signs "bad signature" tokens under the same kid
        self.endorsements = ["msteams"]
        self.algs = ["RS256"]  # id_token_signing_alg_values_supported
        self.tokens: list[str] = []  # access tokens issued to the bot
        self.revoked: set[str] = set()
        self.deny_all = False
        self.expires_in: int | None = 3599
        self.activities: list[dict[str, Any]] = []  # posted: {"conversation", "reply_to", "activity", "id"}
        self.posted: dict[tuple[str, str], dict[str, Any]] = {}  # (conversation, id) -> the activity as now shown
        self.updates: list[dict[str, Any]] = []  # {"conversation", "id", "activity"} of each accepted update
        self.deleted: set[str] = set()  # ids of posted activities deleted since (an update gets 403 Unknown)
        r = self.app.router
        r.add_get("/v1/.well-known/openidconfiguration", self._openid)
        r.add_get("/v1/.well-known/keys", self._keys)
        r.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        r.add_post("/v3/conversations/{conversation}/activities", self._activity)
        r.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._activity)
        r.add_put("/v3/conversations/{conversation}/activities/{activity_id}", self._update)

    @property
    def openid_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return f"{self.url}/botframework.com/oauth2/v2.0/token"

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    async def _openid(self, request: web.Request) -> web.Response:
        # The example document of learn.microsoft.com's "Authentication with the Bot Connector API", jwks_uri ours.
        return web.json_response({"issuer": ISSUER, "authorization_endpoint": "https://invalid.botframework.com",
                                  "jwks_uri": f"{self.url}/v1/.well-known/keys",
                                  "id_token_signing_alg_values_supported": self.algs,
                                  "token_endpoint_auth_methods_supported": ["private_key_jwt"]})

    async def _keys(self, request: web.Request) -> web.Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "x5t": self.kid, "endorsements": list(self.endorsements)})
        return web.json_response({"keys": [jwk]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return json_error(400, {"error": "invalid_request", "error_description": "AADSTS900144: The request body "
                                    "must contain the following parameter: 'grant_type' or a valid 'scope'."})
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_secret:
            return json_error(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                                    "secret provided. Ensure the secret being sent in the request is the client "
                                    "secret value, not the client secret ID."})
        token = "eyJbot." + secrets.token_urlsafe(24) + ".sig"
        self.tokens.append(token)
        return web.json_response({"token_type": "Bearer", "expires_in": self.expires_in,
                                  "ext_expires_in": self.expires_in, "access_token": token})

    def revoke(self) -> None:
        """Every token issued so far now answers 401 (as an expired one does)."""
        self.revoked.update(self.tokens)

    def _denied(self, request: web.Request) -> web.Response | None:
        token = bearer(request)
        if self.deny_all or token not in self.tokens or token in self.revoked:
            return json_error(401, {"message": "Authorization has been denied for this request."})
        return None

    async def _activity(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        data = json.loads(await request.read())
        conversation = request.match_info["conversation"]
        aid = f"1:{uuid.uuid4().hex[:12]}"
        self.activities.append({"conversation": conversation, "reply_to": request.match_info.get("reply_to"),
                                "activity": data, "id": aid})
        self.posted[(conversation, aid)] = data
        return web.json_response({"id": aid}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        conversation, aid = request.match_info["conversation"], request.match_info["activity_id"]
        if not any(c == conversation for c, _ in self.posted):
            return json_error(404, {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}})
        if aid in self.deleted:
            return json_error(403, {"error": {"code": "ServiceError", "message": "Unknown"}})
        if (conversation, aid) not in self.posted:
            return json_error(404, {"error": {"code": "ActivityNotFoundInConversation",
                                              "message": "Message does not exist in the thread."}})
        data = json.loads(await request.read())
        self.posted[(conversation, aid)] = data
        self.updates.append({"conversation": conversation, "id": aid, "activity": data})
        return web.json_response({"id": aid})

    # -- what the Bot Connector sends the bot --------------------------------------------------

    def sign(self, service_url: str | None = None, *, audience: str | None = None, issuer: str = ISSUER,
             expires_in: int = 3600, wrong_key: bool = False, kid: str | None = None) -> str:
        """The Bearer token of an inbound activity (valid unless an argument says otherwise)."""
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience or self.app_id, "serviceUrl": service_url or self.service_url,
                  "nbf": now - 5, "iat": now - 5, "exp": now + expires_in}
        key = self.other_key if wrong_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})


def submit_activity(service_url: str, data: dict[str, Any], *, aad: str = "aad-alice", channel: str = "msteams",
                    conversation: str = "19:abc@thread.tacv2", card: str = "1:card-activity") -> dict[str, Any]:
    """A click on an Action.Submit button in a Teams channel: a ``message`` whose ``value`` is the button's data.

    Its ``replyToId`` is the id of the card clicked (``card``: the id the bot's post was answered with).
    Each call is a new activity (a new ``id``, as the Bot Connector gives every activity): the engine
    refuses the same activity twice as a replay.
    """
    return {"type": "message", "id": f"1:{uuid.uuid4().hex}", "timestamp": "2026-12-06T10:00:00.000Z",
            "serviceUrl": service_url, "channelId": channel,
            "from": {"id": f"29:1{aad}", "name": "Alice", "aadObjectId": aad},
            "conversation": {"id": conversation, "conversationType": "channel", "isGroup": True,
                             "tenantId": "72f988bf-0000-0000-0000-000000000000"},
            "recipient": {"id": "28:bot", "name": "musubi"}, "replyToId": card, "value": data,
            "channelData": {"tenant": {"id": "72f988bf-0000-0000-0000-000000000000"},
                            "channel": {"id": conversation}, "team": {"id": "19:team@thread.tacv2"}}}
