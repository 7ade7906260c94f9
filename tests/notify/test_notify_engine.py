"""Notifications and inbound calls end to end: a real engine, runs, the Slack fake, `serve hooks`' server.

The Slack fake receives what the engine sends; signed interactions are posted to the hooks
server (tui/serve/hooks.py) in this process, which forwards them to the engine over its socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from core.api import inbound as ib
from core.api import integrations as i
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.fakes.gitlab import GitLabFake
from tests.fakes.senders import (
    block_actions,
    send_gitlab_hook,
    send_slack_interaction,
    slack_signature,
)
from tests.fakes.slack import SlackFake
from tests.fakes.threaded import threaded
from tests.runs.helpers import runs_home, start, wait
from tui.serve.hooks import HooksOptions, HooksServer

HOOK = ",".join(f"{n}=connectors.{n}:factory" for n in ("jira", "github", "gitlab", "ado", "slack", "teams"))
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
WEBHOOK_TOKEN = "gl-hook-SECRET-token-123"


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    with runs_home(MUSUBI_TEST_CONNECTORS=HOOK) as h:
        yield h


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackFake]:
    with threaded(SlackFake) as f:
        yield f


def setup_slack(h: Home, slack: SlackFake, tenant: str, channel: str, events: str, token: str | None = None) -> None:
    status, body = h.raw("PUT", "/v1/integrations/slack", {
        "settings": {"channel": channel, "api_url": slack.url, "events": events},
        "secrets": {"token": token or slack.token, "signing_secret": SIGNING}}, tenant=tenant)
    assert status == 200, body


def in_channel(slack: SlackFake, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages if m["channel"] == channel]


def titles(slack: SlackFake, channel: str) -> list[str]:
    return [str(m["text"]).split(":")[0] for m in in_channel(slack, channel)]


def hooks_call(h: Home, tenant: str, scenario: Any) -> Any:
    """Run ``scenario(base_url)`` against a hooks server serving ``tenant``."""

    async def go() -> Any:
        server = HooksServer(h.paths, HooksOptions(port=0, tenant=tenant))
        await server.start()
        try:
            return await scenario(f"http://127.0.0.1:{server.port}")
        finally:
            await server.close()

    return asyncio.run(go())


def test_approval_buttons_reach_the_engine_as_the_mapped_user(home: Home, slack: SlackFake) -> None:
    h = home
    tenant = h.new_tenant("n", members={"alice": "admin", "bob": "member"})
    setup_slack(h, slack, tenant, "C0001", "all")
    for ext, user in (("UALICE", "alice"), ("UBOB", "bob")):
        status, body = h.raw("PUT", f"/v1/integrations/slack/users/{ext}", {"user": user}, tenant=tenant)
        assert status == 200, body
        _exactly(body, ib.UserMap)
    status, body = h.raw("GET", "/v1/integrations/users", tenant=tenant)
    assert status == 200 and len(body["users"]) == 2
    _exactly(body, ib.UserMap)
    status, body = h.raw("PUT", "/v1/integrations/slack/users/UEVE", {"user": "eve"}, tenant=tenant)
    assert status == 404 and "not a member" in body["error"]["message"]
    run = start(h, tenant, "gated")
    wait(h, tenant, run["id"], "waiting")
    msg = poll(lambda: next((m for m in in_channel(slack, "C0001") if m["text"].startswith("Approval needed")),
                            None), timeout=20)
    actions = next(b for b in msg["blocks"] if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == ["approve", "reject"]
    value = actions[0]["value"]
    assert value.startswith(f"{run['id']}|")

    async def scenario(base: str) -> dict[str, Any]:
        url = f"{base}/slack/interactions/{tenant}"
        out: dict[str, Any] = {}
        now = int(time.time())
        out["bad"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UALICE"),
                                                  signature="v0=" + "0" * 64)
        out["stale"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UALICE"),
                                                    timestamp=now - 301)
        out["wrong_secret"] = await send_slack_interaction(url, "not-the-secret",
                                                           block_actions("approve", value, "UALICE"))
        out["unknown"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UNOBODY"))
        out["bob"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UBOB"))
        out["alice"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UALICE"),
                                                    timestamp=now)
        out["replay"] = await send_slack_interaction(url, SIGNING, block_actions("approve", value, "UALICE"),
                                                     timestamp=now)
        out["again"] = await send_slack_interaction(url, SIGNING, block_actions("reject", value, "UALICE"),
                                                    timestamp=now + 1)
        return out

    out = hooks_call(h, tenant, scenario)
    assert out["bad"][0] == 401 and "signature mismatch" in out["bad"][1]["error"]
    assert out["stale"][0] == 401 and "stale" in out["stale"][1]["error"]
    assert out["wrong_secret"][0] == 401
    assert out["unknown"][0] == 200 and out["unknown"][1]["response_type"] == "ephemeral"
    assert "UNOBODY" in out["unknown"][1]["text"] and "map-user" in out["unknown"][1]["text"]
    assert out["bob"][0] == 200 and "bob may not approve" in out["bob"][1]["text"]
    assert out["alice"][0] == 200 and out["alice"][1]["replace_original"] is False
    assert out["alice"][1]["text"].endswith(f"of run {run['id']} approved by alice.")
    assert out["replay"][0] == 401 and "replayed" in out["replay"][1]["error"]
    assert out["again"][0] == 200 and out["again"][1]["text"].startswith("Already decided")
    wait(h, tenant, run["id"], "done")
    poll(lambda: "Run finished" in titles(slack, "C0001"), timeout=20)

    # The engine route itself (what the server forwards to): a verified click that is no musubi button.
    raw = urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "UALICE"}})})
    ts = str(int(time.time()))
    status, answer = h.raw("POST", "/v1/inbound/slack", {"body": raw, "timestamp": ts,
                                                         "signature": slack_signature(SIGNING, ts, raw.encode())},
                           tenant=tenant)
    assert status == 200 and answer["outcome"] == "ignored", answer
    _exactly(answer, ib.SlackAnswer)

    events = h.audit(tenant)
    decided = [e for e in events if e["action"] in ("run.approve", "run.reject")]
    assert [(e["action"], e["outcome"], e["actor"]) for e in decided if e["outcome"] == "success"] == [
        ("run.approve", "success", "alice")]
    approved = next(e for e in decided if e["outcome"] == "success")
    assert approved["details"]["session"] == "slack:UALICE" and approved["details"]["comment"] == "via Slack (UALICE)"
    assert any(e["outcome"] == "denied" and e["actor"] == "bob" for e in decided)
    inbound = [e["details"].get("reason") for e in events if e["action"] == "integration.inbound"]
    assert "unknown Slack user" in inbound and "signature mismatch" in inbound
    assert any(r and r.startswith("replayed") for r in inbound) and any(r and r.startswith("stale") for r in inbound)
    sent = [e for e in events if e["action"] == "integration.notify"]
    assert {e["details"]["event"] for e in sent} >= {"approval", "run_finished"}
    assert all(e["outcome"] == "success" and e["resource"] == "slack:C0001" for e in sent)
    text = json.dumps(events)
    assert SIGNING not in text and slack.token not in text


def test_opt_in_filters_and_a_failing_channel_never_fails_the_run(home: Home, slack: SlackFake) -> None:
    h = home
    only_failed = h.new_tenant("f")
    setup_slack(h, slack, only_failed, "C0002", "run_failed")
    broken = h.new_tenant("b")
    setup_slack(h, slack, broken, "C0004", "all", token="xoxb-revoked-SECRET-token")
    r1 = start(h, only_failed, "two")
    assert wait(h, only_failed, r1["id"], "done")["state"] == "done"
    r2 = start(h, broken, "two")  # after r1 ended: the one queue is in order, so r1's notice (if any) went first
    assert wait(h, broken, r2["id"], "done")["state"] == "done"
    errors = poll(lambda: [e for e in h.audit(broken, action="integration.notify") if e["outcome"] == "error"],
                  timeout=20)
    assert errors[0]["details"]["kind"] == "auth" and errors[0]["details"]["event"] == "run_finished"
    assert "invalid_auth" in errors[0]["details"]["message"]
    assert "xoxb-revoked-SECRET-token" not in json.dumps(h.audit(broken))
    assert in_channel(slack, "C0002") == []
    assert h.audit(only_failed, action="integration.notify") == []


def test_events_setting_is_checked(home: Home) -> None:
    tenant = home.new_tenant("e")
    status, body = home.raw("PUT", "/v1/integrations/slack", {"settings": {"events": "run_failed,run_exploded"}},
                            tenant=tenant)
    assert status == 400 and "run_exploded" in body["error"]["message"]


def test_only_the_engine_user_may_forward(home: Home) -> None:
    tenant = home.new_tenant("o", members={"mallory": "admin"})
    for path in ("/v1/inbound/slack", "/v1/inbound/gitlab"):
        status, body = home.raw("POST", path, {"body": "payload=%7B%7D"}, tenant=tenant, as_user="mallory")
        assert status == 403 and "musubi serve hooks" in body["error"]["message"], body


def test_gitlab_webhook_token_and_pipeline_status(home: Home) -> None:
    h = home
    tenant = h.new_tenant("g")
    with threaded(GitLabFake) as gl:
        status, body = h.raw("PUT", "/v1/integrations/gitlab", {
            "settings": {"url": gl.url, "project": "acme/app"},
            "secrets": {"token": gl.token, "webhook_token": WEBHOOK_TOKEN}}, tenant=tenant)
        assert status == 200, body
        event = {"object_kind": "pipeline", "project": {"id": 5, "path_with_namespace": "acme/app",
                                                        "web_url": "https://gitlab.example/acme/app"},
                 "object_attributes": {"id": 4242, "iid": 7, "status": "running", "ref": "feature-x",
                                       "sha": "3f2a" * 10}}

        async def scenario(base: str) -> list[tuple[int, Any]]:
            url = f"{base}/gitlab/{tenant}"
            return [await send_gitlab_hook(url, None, event, event="Pipeline Hook"),
                    await send_gitlab_hook(url, "wrong-token", event, event="Pipeline Hook"),
                    await send_gitlab_hook(url, WEBHOOK_TOKEN, event, event="Pipeline Hook", idempotency_key="k1"),
                    await send_gitlab_hook(url, WEBHOOK_TOKEN, event, event="Pipeline Hook", idempotency_key="k1"),
                    await send_gitlab_hook(url, WEBHOOK_TOKEN, {"no": "kind"}, event="Pipeline Hook")]

        missing, wrong, ok, dup, bad = hooks_call(h, tenant, scenario)
        assert missing[0] == 401 and wrong[0] == 401 and "X-Gitlab-Token" in wrong[1]["error"]
        assert ok == (202, {"accepted": True, "duplicate": False, "kind": "pipeline"})
        _exactly(ok[1], ib.GitLabAccepted)
        assert dup == (200, {"accepted": True, "duplicate": True, "kind": "pipeline"})
        assert bad[0] == 400 and "object_kind" in bad[1]["error"]
        status, body = h.raw("GET", "/v1/integrations/gitlab/pipelines?ref=feature-x", tenant=tenant)
        assert status == 200, body
        _exactly(body, i.PipelineStatus)
        run = next(r for r in body["runs"] if r["id"] == "4242")
        assert run["state"] == "running" and run["url"].endswith("/-/pipelines/4242")
        by_sha = h.raw("GET", f"/v1/integrations/gitlab/pipelines?ref={'3f2a' * 10}", tenant=tenant)[1]
        assert [r["id"] for r in by_sha["runs"]] == ["4242"]
    refused = [e for e in h.audit(tenant) if e["action"] == "integration.inbound"]
    assert [e["details"]["reason"] for e in refused] == ["invalid X-Gitlab-Token", "invalid X-Gitlab-Token"]
    assert WEBHOOK_TOKEN not in json.dumps(h.audit(tenant))


def test_quota_alert_and_approval_reach_teams_as_adaptive_cards(home: Home) -> None:
    from tests.fakes.teams import TeamsFake

    h = home
    tenant = h.new_tenant("q")
    with threaded(TeamsFake) as teams:
        status, body = h.raw("PUT", "/v1/integrations/teams", {"settings": {"events": "quota_alert,approval"},
                                                               "secrets": {"webhook_url": teams.webhook_url}},
                             tenant=tenant)
        assert status == 200, body
        run = start(h, tenant, "gated")
        wait(h, tenant, run["id"], "waiting")
        status, body = h.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1_000_000, "period": "day",
                                                   "alerts": [0.5]}, tenant=tenant)
        assert status == 200, body
        status, body = h.raw("POST", "/v1/usage", {"model": "gpt-4o", "input_tokens": 600_000}, tenant=tenant)
        assert status == 201, body
        cards = poll(lambda: teams.cards if len(teams.cards) >= 2 else None, timeout=20)
        texts = [json.dumps(c) for c in cards]
        assert any("Quota alert: tokens at 50%" in t for t in texts)
        approval = next(t for t in texts if "Approval needed" in t)
        assert f"musubi runs approve {run['id']}" in approval and "Action.Submit" not in approval
        h.raw("POST", f"/v1/runs/{run['id']}/cancel", {}, tenant=tenant)
    sent = h.audit(tenant, action="integration.notify")
    assert sorted(e["details"]["event"] for e in sent) == ["approval", "quota_alert"]
    assert all(e["resource"] == "teams:webhook" and e["outcome"] == "success" for e in sent)
    assert teams.sig not in json.dumps(h.audit(tenant))


def test_coverage_falling_across_coverage_min_is_told_once(home: Home, slack: SlackFake, tmp_path: Any) -> None:
    from tests.trace.fixture import build_repo

    h = home
    tenant = h.new_tenant("c")
    repo = build_repo(tmp_path / "r", git=False)
    status, body = h.raw("POST", "/v1/projects", {"name": "shop", "path": str(repo)}, tenant=tenant)
    assert status in (200, 201), body

    def summary() -> float:
        status, body = h.raw("GET", f"/v1/trace?view=summary&path={repo}", tenant=tenant)
        assert status == 200, body
        return float(body["summary"]["overall"])

    before = summary()
    assert before > 0
    status, body = h.raw("PUT", "/v1/integrations/slack", {
        "settings": {"channel": "C0005", "api_url": slack.url, "events": "coverage_low",
                     "coverage_min": f"{before:g}"},
        "secrets": {"token": slack.token}}, tenant=tenant)
    assert status == 200, body
    assert summary() == before  # no fall: nothing told
    for f in (repo / "src").rglob("*.py"):  # the code that implements requirements goes: coverage falls
        f.unlink()
    after = summary()
    assert after < before
    msg = poll(lambda: in_channel(slack, "C0005"), timeout=20)
    assert msg[0]["text"].startswith(f"Trace coverage below {before:g}%")
    summary()  # still below: not told again
    sent = poll(lambda: h.audit(tenant, action="integration.notify"), timeout=20)
    assert [e["details"]["event"] for e in sent] == ["coverage_low"]
    assert len(in_channel(slack, "C0005")) == 1
