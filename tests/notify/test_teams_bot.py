"""The Teams bot end to end: approval cards with buttons through the Bot Connector, signed clicks back.

A real engine and runs; the Bot Framework fake (tests/fakes/botframework.py) receives the cards and
replies and signs the clicks; `serve hooks`' server (tui/serve/hooks.py) forwards them to the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from core.api import inbound as ib
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.fakes.botframework import BotFrameworkFake, submit_activity
from tests.fakes.threaded import threaded
from tests.notify.test_notify_engine import HOOK, hooks_call
from tests.runs.helpers import runs_home, show, start, wait

CONVERSATION = "19:abc@thread.tacv2"


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    with runs_home(MUSUBI_TEST_CONNECTORS=HOOK) as h:
        yield h


@pytest.fixture(scope="module")
def bf() -> Iterator[BotFrameworkFake]:
    with threaded(BotFrameworkFake) as f:
        yield f


def setup_bot(h: Home, bf: BotFrameworkFake, tenant: str, **extra: str) -> None:
    settings = {"events": "approval", "bot_app_id": bf.app_id, "bot_service_url": bf.service_url,
                "bot_conversation": CONVERSATION, "bot_service_hosts": "127.0.0.1", "bot_token_url": bf.token_url,
                "bot_openid_url": bf.openid_url, **extra}
    status, body = h.raw("PUT", "/v1/integrations/teams", {"settings": settings,
                                                           "secrets": {"bot_app_secret": bf.app_secret}},
                         tenant=tenant)
    assert status == 200, body


async def post_activity(url: str, activity: dict[str, Any], token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as s, s.post(url, data=json.dumps(activity), headers=headers) as r:
        text = await r.text()
        return r.status, json.loads(text) if text else None


def gate_state(h: Home, tenant: str, run_id: str) -> str:
    return str(show(h, tenant, run_id)["state"])


def card_posts(bf: BotFrameworkFake) -> list[dict[str, Any]]:
    return [a for a in bf.activities if a["reply_to"] is None]


def test_card_buttons_and_signed_clicks(home: Home, bf: BotFrameworkFake) -> None:
    h = home
    tenant = h.new_tenant("tb", members={"alice": "admin", "bob": "member"})
    setup_bot(h, bf, tenant)
    for ext, user in (("aad-alice", "alice"), ("29:1aad-bob", "bob")):
        status, body = h.raw("PUT", f"/v1/integrations/teams/users/{ext}", {"user": user}, tenant=tenant)
        assert status == 200, body
    run = start(h, tenant, "gated")
    wait(h, tenant, run["id"], "waiting")
    posted = poll(lambda: card_posts(bf) or None, timeout=20)[0]
    assert posted["conversation"] == CONVERSATION
    att = posted["activity"]["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    actions = card["actions"]
    assert [(a["type"], a["title"]) for a in actions] == [
        ("Action.Submit", "Approve"), ("Action.Submit", "Reject"), ("Action.Submit", "Request changes")]
    data = actions[0]["data"]
    assert data["musubi"] == "gate" and data["run"] == run["id"] and data["decision"] == "approve"
    assert data["gate"] and len(data["sha"]) == 64
    assert [a["data"]["decision"] for a in actions] == ["approve", "reject", "request_changes"]

    sent_tokens: list[str] = []

    def sign(**kw: Any) -> str:
        t = bf.sign(**kw)
        sent_tokens.append(t)
        return t

    async def scenario(base: str) -> dict[str, Any]:
        url = f"{base}/api/messages/{tenant}"
        click = submit_activity(bf.service_url, data)
        evil = "http://localhost:1/"  # loopback, but not on the allow-list (127.0.0.1)
        out: dict[str, Any] = {
            "none": await post_activity(url, click, None),
            "bad_sig": await post_activity(url, click, sign(wrong_key=True)),
            "audience": await post_activity(url, click, sign(audience="another-bot")),
            "issuer": await post_activity(url, click, sign(issuer="https://sts.windows.net/x/")),
            "expired": await post_activity(url, click, sign(expires_in=-600)),
            "svc_mismatch": await post_activity(url, click, sign(service_url="https://smba.trafficmanager.net/x/")),
            "not_allowed": await post_activity(url, submit_activity(evil, data), sign(service_url=evil)),
            "channel": await post_activity(url, submit_activity(bf.service_url, data, channel="webchat"), sign()),
        }
        out["still"] = gate_state(h, tenant, run["id"])
        out["unknown"] = await post_activity(url, submit_activity(bf.service_url, data, aad="aad-nobody"), sign())
        bob = submit_activity(bf.service_url, data, aad="")
        bob["from"] = {"id": "29:1aad-bob", "name": "Bob"}  # no aadObjectId: the Teams user id is mapped
        out["bob"] = await post_activity(url, bob, sign())
        out["still_after_bob"] = gate_state(h, tenant, run["id"])
        token = sign()
        out["alice"] = await post_activity(url, click, token)
        out["replay"] = await post_activity(url, click, token)
        reject = submit_activity(bf.service_url, {**data, "decision": "reject"})
        out["again"] = await post_activity(url, reject, sign())
        return out

    out = hooks_call(h, tenant, scenario)
    for name in ("none", "bad_sig", "audience", "issuer", "expired", "svc_mismatch"):
        assert out[name][0] == 401, (name, out[name])
    assert "signature does not verify" in out["bad_sig"][1]["error"]
    assert "aud" in out["audience"][1]["error"] and "iss" in out["issuer"][1]["error"]
    assert "expired" in out["expired"][1]["error"] and "serviceUrl claim" in out["svc_mismatch"][1]["error"]
    assert out["not_allowed"][0] == 403 and "bot_service_hosts" in out["not_allowed"][1]["error"]
    assert out["channel"][0] == 403 and "endorsed" in out["channel"][1]["error"]
    assert out["still"] == "waiting" and out["still_after_bob"] == "waiting"
    assert out["unknown"] == (200, None) and out["bob"] == (200, None)
    assert out["alice"] == (200, None) and out["again"] == (200, None)
    assert out["replay"][0] == 401 and "replayed activity" in out["replay"][1]["error"]  # the same activity again
    wait(h, tenant, run["id"], "done")

    replies = [a for a in bf.activities if a["reply_to"] is not None]
    texts = [r["activity"]["text"] for r in replies]
    assert all(r["reply_to"] == "1:card-activity" and r["conversation"] == CONVERSATION for r in replies)
    assert len(texts) == 4, texts  # the replay was refused before anything was done or said
    assert "aad-nobody" in texts[0] and "map-user teams" in texts[0]
    assert texts[1].startswith("bob may not approve")
    assert texts[2].endswith(f"of run {run['id']} approved by alice.")
    assert texts[3].startswith("Already decided")

    events = h.audit(tenant)
    decided = [e for e in events if e["action"] in ("run.approve", "run.reject")]
    assert [(e["action"], e["actor"]) for e in decided if e["outcome"] == "success"] == [("run.approve", "alice")]
    ok = next(e for e in decided if e["outcome"] == "success")
    assert ok["details"]["session"] == "teams:aad-alice" and ok["details"]["comment"] == "via Teams (aad-alice)"
    assert any(e["outcome"] == "denied" and e["actor"] == "bob" for e in decided)
    reasons = [e["details"]["reason"] for e in events if e["action"] == "integration.inbound"]
    for part in ("no Authorization", "signature does not verify", "aud", "iss", "expired", "serviceUrl claim",
                 "bot_service_hosts", "endorsed", "unknown Teams user", "replayed activity"):
        assert any(part in r for r in reasons), (part, reasons)
    notified = [e for e in events if e["action"] == "integration.notify"]
    assert {e["details"]["event"] for e in notified} == {"approval", "bot_reply", "card_update"}
    # The click names a card the Bot Connector does not know (replyToId 1:card-activity): the update is
    # refused with its ErrorResponse, audited, and the decision confirmed in the thread instead.
    failed = [e for e in notified if e["outcome"] != "success"]
    assert [(e["details"]["event"], e["details"]["id"]) for e in failed] == [("card_update", "1:card-activity")] * 2
    assert "Message does not exist in the thread" in failed[0]["details"]["message"]
    assert bf.updates == []
    logs = h.paths.engine_log.read_text("utf-8")
    for secret in [bf.app_secret, *bf.tokens, *sent_tokens]:
        assert secret not in json.dumps(events) and secret not in logs


def test_engine_route_answers_an_invoke_and_ignores_other_activities(home: Home, bf: BotFrameworkFake) -> None:
    h = home
    tenant = h.new_tenant("ti")
    setup_bot(h, bf, tenant)
    other = submit_activity(bf.service_url, {"x": 1})
    other["value"] = None
    status, answer = h.raw("POST", "/v1/inbound/teams", {"body": json.dumps(other),
                                                         "authorization": f"Bearer {bf.sign()}"}, tenant=tenant)
    assert status == 200 and answer["outcome"] == "ignored", answer
    _exactly(answer, ib.TeamsAnswer)
    seen = [e for e in h.audit(tenant, action="integration.inbound") if e["outcome"] == "success"]
    assert seen[0]["details"]["conversation"] == "19:abc@thread.tacv2"  # how an admin finds bot_conversation
    assert seen[0]["details"]["service_url"] == bf.service_url
    invoke = submit_activity(bf.service_url, {})
    invoke.update(type="invoke", name="adaptiveCard/action", value={"action": {"type": "Action.Execute", "data": {
        "musubi": "gate", "run": "r-missing", "gate": "g", "decision": "approve"}}})
    status, answer = h.raw("POST", "/v1/inbound/teams", {"body": json.dumps(invoke),
                                                         "authorization": f"Bearer {bf.sign()}"}, tenant=tenant)
    assert status == 200 and answer["outcome"] == "unknown_user", answer
    assert answer["response"]["statusCode"] == 200 and "not mapped" in answer["response"]["value"]


def test_refusals_without_a_bot_and_from_other_users(home: Home, bf: BotFrameworkFake) -> None:
    h = home
    tenant = h.new_tenant("tn", members={"mallory": "admin"})
    status, body = h.raw("POST", "/v1/inbound/teams", {"body": "{}", "authorization": f"Bearer {bf.sign()}"},
                         tenant=tenant)
    assert status == 403 and "no bot is set up" in body["error"]["message"], body
    status, body = h.raw("POST", "/v1/inbound/teams", {"body": "{}"}, tenant=tenant, as_user="mallory")
    assert status == 403 and "musubi serve hooks" in body["error"]["message"], body
    status, body = h.raw("PUT", "/v1/integrations/teams/users/bad!id", {"user": "mallory"}, tenant=tenant)
    assert status == 400 and "aadObjectId" in body["error"]["message"], body


def test_a_wrong_bot_secret_fails_the_card_with_the_vendor_text(home: Home, bf: BotFrameworkFake) -> None:
    h = home
    tenant = h.new_tenant("tw")
    setup_bot(h, bf, tenant)
    status, body = h.raw("PUT", "/v1/integrations/teams", {"secrets": {"bot_app_secret": "wrong-SECRET-xyz"}},
                         tenant=tenant)
    assert status == 200, body
    run = start(h, tenant, "gated")
    wait(h, tenant, run["id"], "waiting")
    errors = poll(lambda: [e for e in h.audit(tenant, action="integration.notify") if e["outcome"] == "error"],
                  timeout=20)
    assert "invalid_client" in errors[0]["details"]["message"] and errors[0]["details"]["event"] == "approval"
    assert "wrong-SECRET-xyz" not in json.dumps(h.audit(tenant))
    h.raw("POST", f"/v1/runs/{run['id']}/cancel", {}, tenant=tenant)


def gated_card(h: Home, bf: BotFrameworkFake, prefix: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A new tenant with the bot and alice mapped, a run waiting at its gate: (tenant, run, the card the bot posted)."""
    tenant = h.new_tenant(prefix, members={"alice": "admin"})
    setup_bot(h, bf, tenant)
    status, body = h.raw("PUT", "/v1/integrations/teams/users/aad-alice", {"user": "alice"}, tenant=tenant)
    assert status == 200, body
    run = start(h, tenant, "gated")
    wait(h, tenant, run["id"], "waiting")

    def mine() -> dict[str, Any] | None:
        return next((a for a in card_posts(bf)
                     if a["activity"]["attachments"][0]["content"]["actions"][0]["data"]["run"] == run["id"]), None)

    return tenant, run, poll(mine, timeout=20)


def test_a_decision_updates_the_card_in_place_without_buttons(home: Home, bf: BotFrameworkFake) -> None:
    h = home
    tenant, run, posted = gated_card(h, bf, "tu")
    data = posted["activity"]["attachments"][0]["content"]["actions"][0]["data"]
    replies_before = len(bf.activities)
    click = submit_activity(bf.service_url, data, card=posted["id"])
    status, answer = h.raw("POST", "/v1/inbound/teams", {"body": json.dumps(click),
                                                         "authorization": f"Bearer {bf.sign()}"}, tenant=tenant)
    assert status == 200 and answer["outcome"] == "approved", answer
    updates = [u for u in bf.updates if u["id"] == posted["id"]]
    assert len(updates) == 1 and updates[0]["conversation"] == CONVERSATION
    activity = updates[0]["activity"]
    assert activity["id"] == posted["id"] and activity["type"] == "message"
    card = activity["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and "actions" not in card  # the buttons are gone
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Decision"] == "approved" and facts["By"] == "alice" and facts["Run"] == run["id"]
    at = datetime.strptime(facts["At"], "%Y-%m-%d %H:%M:%S UTC")
    approved = next(e for e in h.audit(tenant, action="run.approve") if e["outcome"] == "success")
    assert abs((datetime.fromisoformat(approved["ts"].rstrip("Z")) - at).total_seconds()) < 60  # when it was decided
    assert f"of run {run['id']}: approved" in card["body"][0]["text"]
    assert len(bf.activities) == replies_before  # no threaded confirmation: the card says it
    assert bf.posted[(CONVERSATION, posted["id"])] is activity  # what Teams now shows
    # A click on a card whose gate is already decided (a stale copy, another client): the card is set to the
    # recorded decision, not to the click's.
    late = submit_activity(bf.service_url, {**data, "decision": "reject"}, card=posted["id"])
    status, answer = h.raw("POST", "/v1/inbound/teams", {"body": json.dumps(late),
                                                         "authorization": f"Bearer {bf.sign()}"}, tenant=tenant)
    assert status == 200 and answer["outcome"] == "already_decided", answer
    again = [u for u in bf.updates if u["id"] == posted["id"]]
    assert len(again) == 2 and again[1]["activity"]["attachments"][0]["content"] == card
    assert len(bf.activities) == replies_before
    events = h.audit(tenant, action="integration.notify")
    assert [(e["details"]["event"], e["outcome"], e["details"]["id"]) for e in events
            if e["details"]["event"] != "approval"] == [("card_update", "success", posted["id"])] * 2
    wait(h, tenant, run["id"], "done")


def test_a_click_replayed_after_a_restart_is_refused_as_a_replay(home: Home, bf: BotFrameworkFake) -> None:
    """Migration 012's guard for Teams too: each activity's row is written with the decision, and kill -9 and a
    clean stop keep it, so the same activity is refused as a replay (whatever token it comes with)."""
    h = home
    tenant, run, posted = gated_card(h, bf, "tr")
    data = posted["activity"]["attachments"][0]["content"]["actions"][0]["data"]
    click = submit_activity(bf.service_url, data, card=posted["id"])
    other = submit_activity(bf.service_url, {"x": 1})  # not a musubi button: ignored, and remembered all the same
    other["value"] = None
    token = bf.sign()

    def post(activity: dict[str, Any], bearer: str = token) -> tuple[int, Any]:
        return h.raw("POST", "/v1/inbound/teams", {"body": json.dumps(activity), "authorization": f"Bearer {bearer}"},
                     tenant=tenant)

    def refused_as_replay(status: int, answer: Any) -> bool:
        return status == 403 and answer["error"]["code"] == "bad_token" and "replayed activity" in str(answer)

    status, answer = post({k: v for k, v in click.items() if k != "id"})
    assert status == 400 and answer["error"]["field"] == "id", answer  # no id: cannot be guarded, refused
    status, answer = post(click)
    assert status == 200 and answer["outcome"] == "approved", answer
    assert refused_as_replay(*post(click, bf.sign()))  # a fresh token does not make it a new activity
    status, answer = post(other)
    assert status == 200 and answer["outcome"] == "ignored", answer
    wait(h, tenant, run["id"], "done")
    h.kill9()  # right after the answers: the rows were durable with them
    h.start()
    for activity in (click, other):
        assert refused_as_replay(*post(activity))
    h.stop()
    h.start()  # a clean restart too
    assert refused_as_replay(*post(click))
    events = h.audit(tenant)
    assert [e["outcome"] for e in events if e["action"] == "run.approve"] == ["success"]
    reasons = [e["details"].get("reason") for e in events if e["action"] == "integration.inbound"]
    assert reasons.count("replayed activity (this activity was already accepted)") == 4, reasons
    assert "the activity has no id" in reasons
