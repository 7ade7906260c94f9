"""Request models and answers of the inbound routes (Slack, Teams bot, GitLab webhooks, user mapping).

``musubi serve hooks`` forwards each inbound HTTP call to the engine over its socket with
these models; the engine verifies it (docs/integrations.md#inbound).  Kept in their own
module so the shared ``models.py``/``responses.py`` stay untouched.
"""

from __future__ import annotations

from typing import Any, TypedDict

from core.api.models import Request, text

MAX_BODY = 1 << 18  # the largest inbound body forwarded (Slack and GitLab send far less)
MAX_EXTERNAL = 64  # a Slack user id (U0123ABCD) or similar


class SlackInteraction(Request):
    """``POST /v1/inbound/slack``: the raw form body and the two signature headers, as received."""

    body: str
    timestamp: Any = None
    signature: Any = None
    CHECKS = {"body": text(MAX_BODY, required=True), "timestamp": text(32), "signature": text(128)}


class GitLabHook(Request):
    """``POST /v1/inbound/gitlab``: the raw JSON body and the hook's headers, as received."""

    body: str
    token: Any = None
    event: Any = None
    idempotency_key: Any = None
    CHECKS = {"body": text(MAX_BODY, required=True), "token": text(4096), "event": text(100),
              "idempotency_key": text(200)}


class UserMapSet(Request):
    """``PUT /v1/integrations/{system}/users/{external}``: map an external user to a musubi user (or unmap)."""

    system: str
    external: str
    user: Any = None
    CHECKS = {"system": text(16, required=True), "external": text(MAX_EXTERNAL, required=True), "user": text(64)}


class SlackAnswer(TypedDict):
    """What to tell the person who clicked (an ephemeral Slack message) and what happened."""

    outcome: str  # approved | rejected | already_decided | unknown_user | denied | not_found | ignored
    text: str
    response: dict[str, Any]


class TeamsActivity(Request):
    """``POST /v1/inbound/teams``: a Bot Connector activity's raw JSON body and its Authorization header."""

    body: str
    authorization: Any = None
    CHECKS = {"body": text(MAX_BODY, required=True), "authorization": text(16_384)}


class TeamsAnswer(TypedDict):
    """What happened to a Teams click; ``response`` is the invoke response for an Action.Execute, else {}."""

    outcome: str  # approved | rejected | changes requested | already_decided | unknown_user | denied | ...
    text: str
    response: dict[str, Any]


class GitLabAccepted(TypedDict):
    accepted: bool
    duplicate: bool
    kind: str


class UserMapRow(TypedDict):
    system: str
    external: str
    user: str


class UserMap(TypedDict):
    tenant: str
    users: list[UserMapRow]
