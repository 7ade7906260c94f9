"""Senders that play the vendor calling us: a GitLab webhook and a signed Slack interaction.

They post to one of our receivers (an aiohttp app on 127.0.0.1) exactly as the vendor does:
GitLab with ``X-Gitlab-Token`` (the plain secret), ``X-Gitlab-Event`` and ``Idempotency-Key``
(the same across retries, GitLab >= 17.4); Slack as a form with one ``payload`` field, signed
``v0=HMAC-SHA256(secret, "v0:" + timestamp + ":" + raw body)`` in ``X-Slack-Signature`` with
``X-Slack-Request-Timestamp`` (api-notes/connectors.md §3.7, §4.4).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp


async def send_gitlab_hook(url: str, token: str | None, payload: dict[str, Any], *, event: str = "Issue Hook",
                           idempotency_key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": event,
               "Idempotency-Key": idempotency_key or str(uuid.uuid4()), "User-Agent": "GitLab/17.6.0"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    async with aiohttp.ClientSession() as s, s.post(url, data=json.dumps(payload), headers=headers) as r:
        return r.status, await r.json(content_type=None)


def issue_event(iid: int = 12, action: str = "open", state: str = "opened") -> dict[str, Any]:
    return {"object_kind": "issue", "event_type": "issue", "user": {"id": 1, "username": "alice"},
            "project": {"id": 5, "path_with_namespace": "acme/app"},
            "object_attributes": {"id": 901, "iid": iid, "title": "t", "state": state, "action": action},
            "labels": [], "changes": {}}


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def block_actions(action_id: str = "approve", value: str = "run-42", user: str = "U123") -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user, "username": "alice", "team_id": "T1"},
            "team": {"id": "T1", "domain": "acme"}, "trigger_id": "123.456.abc",
            "response_url": "https://hooks.slack.com/actions/T1/1/xyz",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                         "action_ts": "1700000000.000100", "text": {"type": "plain_text", "text": "Approve ✓"}}]}


async def send_slack_interaction(url: str, secret: str, payload: dict[str, Any], *, timestamp: int | None = None,
                                 tamper: bytes | None = None, signature: str | None = None,
                                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``payload`` as Slack does; ``tamper`` replaces the body after signing, ``signature`` forces one."""
    body = urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature if signature is not None else slack_signature(secret, ts, body)
    sent = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig}
    if headers is not None:
        sent = headers
    async with aiohttp.ClientSession() as s, s.post(url, data=tamper if tamper is not None else body,
                                                    headers=sent) as r:
        return r.status, await r.json(content_type=None)
