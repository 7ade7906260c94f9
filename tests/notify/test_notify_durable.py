"""The notification queue and GitLab webhook state survive a restart and kill -9 (migration 010).

Unit tests drive :class:`Notifications` over one :class:`NoticeStore` kept across two instances
(a restart); the engine tests kill the engine with SIGKILL mid-way and start it again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from core.engine.journal import decode
from core.integrations.notify import Notifications
from core.integrations.persist import ROUTE, STOPPED, NoticeStore
from core.storage.base import Update
from tests.engine.helpers import Home, poll
from tests.fakes.senders import block_actions, send_gitlab_hook, slack_signature
from tests.fakes.slack import SlackFake
from tests.fakes.threaded import threaded
from tests.notify.test_notify_engine import (
    HOOK,
    SIGNING,
    WEBHOOK_TOKEN,
    hooks_call,
    in_channel,
    setup_slack,
)
from tests.notify.test_notify_unit import Err, StubIntegrations, run_state
from tests.runs.helpers import runs_home, start, wait

# -- restart semantics, without an engine ------------------------------------------------------


def restart(store: NoticeStore, stub: StubIntegrations, *events: dict[str, Any]) -> Notifications:
    """A new Notifications over the same store (what an engine start does), then ``events`` tapped."""
    n = Notifications(stub, store)  # type: ignore[arg-type]
    n.retry_delays = (0.0, 0.0)

    async def go() -> None:
        await n.start()
        for e in events:
            n.tap("t", e)
        await n.idle()
        await n.close()

    asyncio.run(go())
    return n


def test_a_notice_queued_before_a_stop_is_sent_after_the_start() -> None:
    store = NoticeStore()
    down = StubIntegrations({"slack": {"events": "run_finished"}}, [Err("connection")] * 1)
    n = Notifications(down, store)  # type: ignore[arg-type]
    n.retry_delays = (3600.0, 3600.0)  # the retry is far off: the engine "stops" before it

    async def first() -> None:
        n.tap("t", run_state("done"))
        while not any(r["state"] == "queued" and r["attempts"] == 1 for r in store.rows.values()):
            await asyncio.sleep(0.01)
        await n.close()

    asyncio.run(first())
    (row,) = store.rows.values()
    assert row["system"] == "slack" and row["last_error"].startswith("connection")
    row["next_try"] = store.now()  # the retry time has come by the next start
    up = StubIntegrations({"slack": {"events": "run_finished"}})
    restart(store, up, run_state("done"))  # the run's state published again after the start: not a new notice
    assert [(t["event"], t["attempt"]) for t in up.tries] == [("run_finished", 2)]
    assert row["state"] == "sent" and row["attempts"] == 2


def test_a_send_cut_by_a_stop_is_failed_never_sent_twice() -> None:
    store = NoticeStore()
    stub = StubIntegrations({"slack": {"events": "run_finished"}})
    n = Notifications(stub, store)  # type: ignore[arg-type]

    async def cut() -> None:
        n.tap("t", run_state("done"))
        await n.idle()
        await n.close()

    asyncio.run(cut())
    assert len(stub.tries) == 1
    (row,) = store.rows.values()
    row.update(state="sending")  # as if the engine died while the vendor was being called
    again = StubIntegrations({"slack": {"events": "run_finished"}})
    restart(store, again)
    assert again.tries == [] and row["state"] == "failed" and row["last_error"] == STOPPED


def test_an_unrouted_notice_is_routed_and_sent_after_a_start() -> None:
    store = NoticeStore()
    asyncio.run(_add_only(store))
    assert [r["system"] for r in store.rows.values()] == [ROUTE]
    stub = StubIntegrations({"slack": {"events": "run_finished"}, "teams": {"events": "run_finished"}})
    restart(store, stub)
    assert sorted(t["system"] for t in stub.tries) == ["slack", "teams"]
    assert sorted(r["system"] for r in store.rows.values()) == ["slack", "teams"]


async def _add_only(store: NoticeStore) -> None:
    from core.integrations.notify import notice_for

    notice = notice_for("t", run_state("done"))
    assert notice is not None
    store.add("t", notice.key, notice.event, notice.message, notice.project, notice.data)


def test_nobody_opted_in_is_kept_as_skipped_so_it_stays_deduplicated() -> None:
    store = NoticeStore()
    stub = StubIntegrations({"slack": {"channel": "C1"}})
    restart(store, stub, run_state("done"))
    (row,) = store.rows.values()
    assert row["state"] == "skipped" and stub.tries == []


# -- a real engine killed with SIGKILL ---------------------------------------------------------


@pytest.fixture
def home() -> Iterator[Home]:
    with runs_home(MUSUBI_TEST_CONNECTORS=HOOK) as h:
        yield h


def attempts(h: Home, tenant: str) -> list[tuple[int, str]]:
    return sorted((int(e["details"].get("attempt") or 0), str(e["outcome"])) for e in h.audit(tenant)
                  if e["action"] == "integration.notify")


def journaled_states(h: Home, tenant: str, system: str) -> list[tuple[str, int | None]]:
    """(state, attempts when set) the engine journaled for ``tenant``'s ``system`` notification rows, oldest first:
    what was written since the journal was last emptied (at the first write after DuckDB caught up with it)."""
    states: list[tuple[str, int | None]] = []
    for line in h.paths.journal.read_bytes().splitlines():
        try:
            _no, muts = decode(line)
        except ValueError:  # the line being written
            continue
        states += [(str(m.values["state"]), m.values.get("attempts")) for m in muts
                   if isinstance(m, Update) and m.table == "notify_queue" and m.where.get("tenant_id") == tenant
                   and m.where.get("system") == system and "state" in m.values]
    return states


def queued_again(h: Home, tenant: str, system: str) -> bool:
    """The row was durably queued again after a failed attempt: seen, or a later attempt (which follows it) seen."""
    return any(state == "queued" or (n or 0) >= 2 for state, n in journaled_states(h, tenant, system))


def test_kill9_keeps_a_queued_notification_and_sends_it_once_after_the_start(home: Home) -> None:
    h = home
    tenant = h.new_tenant("d")
    with threaded(SlackFake) as slack:
        setup_slack(h, slack, tenant, "C0001", "run_finished")
        good = slack.url
        status, body = h.raw("PUT", "/v1/integrations/slack", {"settings": {"api_url": "http://127.0.0.1:9"}},
                             tenant=tenant)  # nothing listens there: a connection error, retried later
        assert status == 200, body
        run = start(h, tenant, "two")
        wait(h, tenant, run["id"], "done")
        poll(lambda: (1, "error") in attempts(h, tenant), timeout=20)
        # The row is "queued" again (durable) in the commit after the audited attempt: wait for it in the journal, where
        # it stays until a later write empties the journal (the retry, 2 s later: a condition, not a guessed sleep).
        poll(lambda: queued_again(h, tenant, "slack"), timeout=30)
        h.kill9()
        # While the engine is down the admin fixes the address (the settings file is the store's).
        path = h.paths.tenant_dir(tenant) / "integrations" / "settings.json"
        settings = json.loads(path.read_text())
        settings["slack"]["api_url"] = good
        path.write_text(json.dumps(settings))
        h.start()
        poll(lambda: len(in_channel(slack, "C0001")) >= 1, timeout=30)
        h.stop()
        h.start()  # a graceful restart too: nothing is sent again
        status, _ = h.raw("GET", "/v1/integrations", tenant=tenant)
        assert status == 200
        assert [m["text"].split(":")[0] for m in in_channel(slack, "C0001")] == ["Run finished"]
        got = attempts(h, tenant)
        assert got[0] == (1, "error") and got[-1][1] == "success" and [o for _a, o in got].count("success") == 1


def test_kill9_keeps_gitlab_deliveries_and_pipeline_status(home: Home) -> None:
    h = home
    tenant = h.new_tenant("w")
    status, body = h.raw("PUT", "/v1/integrations/gitlab", {
        "settings": {"url": "http://127.0.0.1:9", "project": "acme/app"},  # the API is unreachable
        "secrets": {"token": "glpat-x", "webhook_token": WEBHOOK_TOKEN}}, tenant=tenant)
    assert status == 200, body
    event = {"object_kind": "pipeline", "project": {"id": 5, "web_url": "https://gitlab.example/acme/app"},
             "object_attributes": {"id": 77, "status": "success", "ref": "main", "sha": "ab" * 20}}

    def send() -> tuple[int, Any]:
        async def scenario(base: str) -> tuple[int, Any]:
            return await send_gitlab_hook(f"{base}/gitlab/{tenant}", WEBHOOK_TOKEN, event, event="Pipeline Hook",
                                          idempotency_key="delivery-1")

        return hooks_call(h, tenant, scenario)

    assert send() == (202, {"accepted": True, "duplicate": False, "kind": "pipeline"})
    h.kill9()
    h.start()
    assert send() == (200, {"accepted": True, "duplicate": True, "kind": "pipeline"})
    status, body = h.raw("GET", "/v1/integrations/gitlab/pipelines?ref=main", tenant=tenant)
    assert status == 200, body
    assert body["source"] == "webhook" and [(r["id"], r["state"]) for r in body["runs"]] == [("77", "success")]


def test_a_coverage_fall_seen_again_after_a_start_is_not_queued_twice() -> None:
    store = NoticeStore()
    stub = StubIntegrations({"slack": {"events": "coverage_low", "coverage_min": "80"}})
    for _ in range(2):  # the same fall (same values) after a restart makes the same key
        n = Notifications(stub, store)  # type: ignore[arg-type]

        async def go(n: Notifications = n) -> None:
            await n.start()
            n.coverage("t", "shop", 90.0)
            n.coverage("t", "shop", 70.0)
            await n.idle()
            await n.close()

        asyncio.run(go())
    assert len(stub.tries) == 1 and len(store.rows) == 1


def test_a_slack_click_replayed_after_a_restart_is_refused_as_a_replay(home: Home) -> None:
    """Migration 012: the replay guard is in DuckDB, written with the decision; kill -9 and a clean stop keep it."""
    h = home
    tenant = h.new_tenant("rp", members={"alice": "admin"})
    with threaded(SlackFake) as slack:
        setup_slack(h, slack, tenant, "C0001", "approval")
        status, body = h.raw("PUT", "/v1/integrations/slack/users/UALICE", {"user": "alice"}, tenant=tenant)
        assert status == 200, body
        run = start(h, tenant, "gated")
        wait(h, tenant, run["id"], "waiting")
        msg = poll(lambda: next(iter(in_channel(slack, "C0001")), None), timeout=20)
    value = next(b for b in msg["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    ts = str(int(time.time()))
    click = urlencode({"payload": json.dumps(block_actions("approve", value, "UALICE"))})
    other = urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "UALICE"}})})

    def post(raw: str) -> tuple[int, Any]:
        return h.raw("POST", "/v1/inbound/slack", {"body": raw, "timestamp": ts,
                                                   "signature": slack_signature(SIGNING, ts, raw.encode())},
                     tenant=tenant)

    for _ in range(2):  # handling failed (a malformed form): not remembered, so its retry is no replay
        status, answer = post("not-a-form")
        assert status == 400 and "payload" in answer["error"]["message"], answer
    status, answer = post(click)
    assert status == 200 and answer["outcome"] == "approved", answer
    status, answer = post(other)
    assert status == 200 and answer["outcome"] == "ignored", answer  # changed nothing, yet remembered
    h.kill9()  # right after the answers: the rows were durable with them
    h.start()
    for raw in (click, other):
        status, answer = post(raw)
        assert status == 403 and answer["error"]["code"] == "bad_signature", answer
        assert "replayed request" in answer["error"]["message"], answer
    h.stop()
    h.start()  # a clean restart too
    status, answer = post(click)
    assert status == 403 and "replayed request" in answer["error"]["message"], answer
    events = h.audit(tenant)
    assert [e["outcome"] for e in events if e["action"] == "run.approve"] == ["success"]
    reasons = [e["details"].get("reason") for e in events if e["action"] == "integration.inbound"]
    assert reasons.count("replayed request (this signature was already accepted)") == 3, reasons
