"""Slack: postMessage with Block Kit, ok:false errors, webhooks, cursor paging, signed interactions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from connectors.http import AuthError, NotFoundError, RequestTimeout, ValidationError
from connectors.slack import SignatureVerifier, SlackConnector, interactions_app
from core.integrations.contracts import IntegrationError, Message
from tests.connectors.fakes_fixtures import fast_policy
from tests.fakes.senders import block_actions, send_slack_interaction, slack_signature
from tests.fakes.slack import SlackFake

MSG = Message("Run 42 needs approval", "Deploy *shop* to staging?", (("run", "42"), ("cost", "$1.20")),
              ("Open run", "https://musubi.example/runs/42"), (("Approve", "approve", "run-42"),
                                                               ("Reject", "reject", "run-42")))


@pytest.fixture
async def slack() -> AsyncIterator[SlackFake]:
    async with SlackFake() as fake:
        yield fake


def connector(fake: SlackFake, token: str | None = None, **settings: Any) -> SlackConnector:
    secrets = {"token": token or fake.token, "webhook_url": fake.url + fake.hook}
    return SlackConnector({"api_url": fake.url, **settings}, secrets, policy=fast_policy(), timeout_s=2.0)


async def test_send_posts_block_kit_with_a_text_fallback(slack: SlackFake) -> None:
    conn = connector(slack, channel="C0001")
    try:
        d = await conn.send(MSG)
    finally:
        await conn.close()
    sent = slack.messages[0]
    assert d.target == "C0001" and isinstance(d.id, str) and d.id == sent["ts"]
    assert sent["text"].startswith("Run 42 needs approval")
    types = [b["type"] for b in sent["blocks"]]
    assert types == ["header", "section", "section", "actions", "context"]
    buttons = sent["blocks"][3]["elements"]
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("approve", "run-42", "primary"), ("reject", "run-42", "danger")]
    req = next(r for r in slack.requests if r.path == "/api/chat.postMessage")
    assert "charset=utf-8" in req.headers["Content-Type"]


async def test_ok_false_with_200_is_an_error_with_slacks_code(slack: SlackFake) -> None:
    conn = connector(slack)
    bad = connector(slack, token="xoxb-WRONG-wrong-WRONG")
    try:
        with pytest.raises(NotFoundError, match="channel_not_found"):
            await conn.send(MSG, "C9999")
        with pytest.raises(AuthError, match="invalid_auth") as err:
            await bad.send(MSG, "C0001")
        with pytest.raises(ValidationError, match="no_text"):
            await conn.post_message("C0001", "")
    finally:
        await conn.close()
        await bad.close()
    assert "WRONG-wrong" not in err.value.message + repr(err.value)
    assert slack.messages == []


async def test_429_is_retried_but_a_timeout_is_not_reposted(slack: SlackFake) -> None:
    slack.rate_limit(times=1)
    conn = connector(slack)
    try:
        await conn.send(MSG, "C0001")
        assert slack.count("POST", "/api/chat.postMessage") == 2 and len(slack.messages) == 1
        slack.fail(200, body={"ok": True}, delay=3.0, path="/api/chat.postMessage")  # slower than the timeout
        with pytest.raises(RequestTimeout):
            await conn.send(MSG, "C0001")
    finally:
        await conn.close()
    assert slack.count("POST", "/api/chat.postMessage") == 3  # the timed-out post was sent once, never again


async def test_incoming_webhook_success_and_plain_text_errors(slack: SlackFake) -> None:
    conn = SlackConnector({}, {"webhook_url": slack.url + slack.hook}, policy=fast_policy())
    try:
        d = await conn.send(MSG)
        slack.fail(410, body=b"channel_is_archived", path="/services/")
        with pytest.raises(Exception, match="channel_is_archived") as err:
            await conn.send(MSG)
    finally:
        await conn.close()
    assert d.target == "webhook" and slack.hook_messages[0]["blocks"][0]["type"] == "header"
    assert "XXXXSECRETXXXX" not in str(err.value)  # the webhook URL is a secret


async def test_conversations_list_follows_the_cursor(slack: SlackFake) -> None:
    slack.channels = [{"id": f"C{n:04d}", "name": f"c{n}"} for n in range(450)]
    conn = connector(slack)
    try:
        chans = await conn.channels()
    finally:
        await conn.close()
    assert len(chans) == 450
    assert [r.query.get("cursor") for r in slack.requests if r.path.endswith("conversations.list")] == [
        None, "200", "400"]


def test_missing_secrets_name_the_fix() -> None:
    with pytest.raises(IntegrationError, match="--secret token"):
        SlackConnector({}, {})
    with pytest.raises(IntegrationError, match="signing_secret"):
        SignatureVerifier("")


# -- signatures ---------------------------------------------------------------------------------

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def test_signature_good_bad_stale_replayed_missing() -> None:
    now = 1_700_000_000
    v = SignatureVerifier(SECRET, clock=lambda: now)
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    ts = str(now - 10)
    good = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(SECRET, ts, body)}
    assert v.check(body, good) is None
    assert v.check(body, good) == "replayed request (this signature was already accepted)"
    assert v.check(body + b"x", {**good, "X-Slack-Signature": slack_signature(SECRET, str(now - 9), body)}
                   ) == "signature mismatch"
    old = str(now - 301)
    assert "stale" in str(v.check(body, {"X-Slack-Request-Timestamp": old,
                                          "X-Slack-Signature": slack_signature(SECRET, old, body)}))
    future = str(now + 301)
    assert "stale" in str(v.check(body, {"X-Slack-Request-Timestamp": future,
                                          "X-Slack-Signature": slack_signature(SECRET, future, body)}))
    assert "missing" in str(v.check(body, {}))
    assert v.check(body, {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}) is not None
    other = SignatureVerifier("another-secret", clock=lambda: now)
    ts2 = str(now - 5)
    assert other.check(body, {"X-Slack-Request-Timestamp": ts2,
                              "X-Slack-Signature": slack_signature(SECRET, ts2, body)}) == "signature mismatch"


async def test_interaction_endpoint_verifies_the_raw_body() -> None:
    got: list[dict[str, Any]] = []

    async def on_action(payload: dict[str, Any]) -> dict[str, Any]:
        got.append(payload)
        return {"text": "recorded"}

    runner = web.AppRunner(interactions_app(SignatureVerifier(SECRET), on_action))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/interactions"  # type: ignore[union-attr]
    payload = block_actions(value="run-42 ✓ ünïcödé")
    try:
        ok = await send_slack_interaction(url, SECRET, payload)
        tampered = await send_slack_interaction(url, SECRET, payload, tamper=b"payload=%7B%22type%22%3A%22x%22%7D")
        stale = await send_slack_interaction(url, SECRET, payload, timestamp=int(time.time()) - 600)
        unsigned = await send_slack_interaction(url, SECRET, payload,
                                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        wrong = await send_slack_interaction(url, "not-the-secret", payload)
    finally:
        await runner.cleanup()
    assert ok == (200, {"text": "recorded"})
    assert got == [json.loads(json.dumps(payload))] and got[0]["actions"][0]["value"] == "run-42 ✓ ünïcödé"
    assert tampered[0] == 401 and tampered[1]["error"] == "signature mismatch"
    assert stale[0] == 401 and "stale" in stale[1]["error"]
    assert unsigned[0] == 401 and wrong[0] == 401
    assert len(got) == 1  # nothing refused reached the handler
