"""Notifications without an engine: which events make which notice, opt-in, retries, never raising."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.errors import BadRequest, MusubiError
from core.integrations.contracts import Message
from core.integrations.notify import (
    EVENTS,
    Notice,
    Notifications,
    check_events,
    notice_for,
    parse_events,
)


class Err(MusubiError):
    def __init__(self, kind: str, status: int | None = None) -> None:
        super().__init__(f"vendor said {kind}")
        self.kind, self.status = kind, status


class Store:
    def __init__(self, settings: dict[str, dict[str, str]]) -> None:
        self._s = settings

    def settings(self, tenant: str) -> dict[str, dict[str, str]]:
        return self._s


class StubIntegrations:
    """Plays IntegrationService.deliver: fails with ``errors`` in turn, then succeeds; records every try."""

    def __init__(self, settings: dict[str, dict[str, str]], errors: list[MusubiError] | None = None) -> None:
        self.store = Store(settings)
        self.errors = list(errors or [])
        self.tries: list[dict[str, Any]] = []

    async def deliver(self, tenant: str, actor: str, system: str, message: Message, target: str | None = None, *,
                      event: str | None = None, attempt: int = 1) -> dict[str, Any]:
        self.tries.append({"system": system, "target": target, "event": event, "attempt": attempt,
                           "message": message})
        if self.errors:
            raise self.errors.pop(0)
        return {"system": system, "target": target or "C1", "id": "1"}


def run_state(state: str, **kw: Any) -> dict[str, Any]:
    return {"type": "run.state", "run": {"id": "r1", "state": state, "workflow": "wf", "feature": "add x",
                                         "tokens": 5, "cost_usd": 0.01, "finished_at": "t", **kw}}


GATE: dict[str, Any] = {"type": "run.gate", "run": "r1", "approval": {"gate": "g1", "state": "pending", "step": "2",
                                                      "artefact": "a1", "shown_sha256": "ab" * 32, "asked_at": "t"}}
QUOTA = {"type": "quota.alert", "quota_id": 3, "metric": "tokens", "period": "month", "scope": "tenant", "user": None,
         "limit": 1000, "used": 800, "threshold": 0.8, "window_start": "2026-12-01"}


@pytest.mark.parametrize(("event", "name"), [
    (run_state("done"), "run_finished"), (run_state("failed", stop_code="error"), "run_failed"),
    (run_state("stopped"), "run_stopped"), (run_state("cancelled"), "run_stopped"),
    (run_state("interrupted"), "run_stopped"), (GATE, "approval"), (QUOTA, "quota_alert"),
])
def test_each_event_type_makes_its_notice(event: dict[str, Any], name: str) -> None:
    n = notice_for("t", event)
    assert n is not None and n.event == name
    if name == "approval":
        assert [b[1] for b in n.message.buttons] == ["approve", "reject"]
        assert n.message.buttons[0][2] == f"r1|g1|{'ab' * 32}"
        assert "musubi runs approve r1" in n.message.text  # the command Teams shows instead of buttons
    if name == "quota_alert":
        assert "80%" in n.message.title and "800 of 1000" in n.message.text


@pytest.mark.parametrize("event", [run_state("running"), run_state("waiting"),
                                   {**GATE, "approval": {**GATE["approval"], "state": "approved"}},
                                   {"type": "audit"}, {"type": "run.step"}, {}])
def test_other_events_make_none(event: dict[str, Any]) -> None:
    assert notice_for("t", event) is None


def test_events_setting_parsing_and_checking() -> None:
    assert parse_events("run_failed, approval") == {"run_failed", "approval"}
    assert parse_events("all") == set(EVENTS)
    assert parse_events("") == set() and parse_events(None) == set()
    assert check_events("run_failed approval") is None
    why = check_events("run_failed,run_exploded")
    assert why and "run_exploded" in why and "run_finished" in why


def drive(n: Notifications, *events: dict[str, Any]) -> None:
    async def go() -> None:
        for e in events:
            n.tap("t", e)
        await n.idle()
        await n.close()

    asyncio.run(go())


def test_opt_in_per_system_and_channel_per_event() -> None:
    stub = StubIntegrations({"slack": {"events": "approval,run_failed", "channel_approval": "CAPPROVE"},
                             "teams": {"events": "run_failed"}})
    n = Notifications(stub)  # type: ignore[arg-type]
    drive(n, run_state("done"), GATE, run_state("failed", finished_at="t2"))
    got = [(t["system"], t["event"], t["target"]) for t in stub.tries]
    assert got == [("slack", "approval", "CAPPROVE"), ("slack", "run_failed", None), ("teams", "run_failed", None)]


def test_teams_gets_no_buttons_but_the_commands() -> None:
    stub = StubIntegrations({"teams": {"events": "approval"}})
    n = Notifications(stub)  # type: ignore[arg-type]
    drive(n, GATE)
    (t,) = stub.tries
    assert t["message"].buttons == () and "musubi runs approve r1" in t["message"].text


def test_nothing_opted_in_sends_nothing() -> None:
    stub = StubIntegrations({"slack": {"channel": "C1"}})
    n = Notifications(stub)  # type: ignore[arg-type]
    drive(n, run_state("done"), GATE, QUOTA)
    assert stub.tries == []


def test_a_run_state_published_twice_notifies_once() -> None:
    stub = StubIntegrations({"slack": {"events": "all"}})
    n = Notifications(stub)  # type: ignore[arg-type]
    drive(n, run_state("done"), run_state("done"))
    assert len(stub.tries) == 1


def test_retried_when_the_vendor_cannot_have_acted_then_delivered() -> None:
    stub = StubIntegrations({"slack": {"events": "run_finished"}}, [Err("rate_limited", 429), Err("upstream", 503)])
    n = Notifications(stub)  # type: ignore[arg-type]
    n.retry_delays = (0.0, 0.0)
    drive(n, run_state("done"))
    assert [t["attempt"] for t in stub.tries] == [1, 2, 3]


@pytest.mark.parametrize("err", [Err("auth", 401), Err("timeout"), Err("validation", 400), Err("upstream", 400),
                                 BadRequest("no")])
def test_not_retried_when_it_could_double_post_or_cannot_succeed(err: MusubiError) -> None:
    stub = StubIntegrations({"slack": {"events": "run_finished"}}, [err, err, err])
    n = Notifications(stub)  # type: ignore[arg-type]
    n.retry_delays = (0.0, 0.0)
    drive(n, run_state("done"))
    assert len(stub.tries) == 1


def test_retries_give_up_after_the_last_delay() -> None:
    stub = StubIntegrations({"slack": {"events": "run_finished"}}, [Err("connection")] * 5)
    n = Notifications(stub)  # type: ignore[arg-type]
    n.retry_delays = (0.0, 0.0)
    drive(n, run_state("done"))
    assert len(stub.tries) == 3


def test_tap_never_raises_and_a_broken_sender_does_not_stop_the_queue() -> None:
    class Broken(StubIntegrations):
        async def deliver(self, *a: Any, **kw: Any) -> dict[str, Any]:
            await super().deliver(*a, **kw)
            raise RuntimeError("bug in a connector")

    stub = Broken({"slack": {"events": "all"}})
    n = Notifications(stub)  # type: ignore[arg-type]
    drive(n, {"type": "run.state", "run": None}, {"type": "quota.alert", "threshold": "x"}, run_state("done"),
          run_state("failed", finished_at="t2"))
    assert [t["event"] for t in stub.tries] == ["quota_alert", "run_finished", "run_failed"]


def test_coverage_notifies_only_on_a_fall_across_the_threshold() -> None:
    stub = StubIntegrations({"slack": {"events": "coverage_low", "coverage_min": "80"},
                             "teams": {"events": "coverage_low"}})  # teams: no coverage_min, never told
    n = Notifications(stub)  # type: ignore[arg-type]

    async def go() -> None:
        n.coverage("t", "shop", 90.0)  # first look: nothing to compare with
        n.coverage("t", "shop", 85.0)  # fell, still above 80
        n.coverage("t", "shop", 70.0)  # crossed: told
        n.coverage("t", "shop", 60.0)  # already below: not again
        n.coverage("t", "shop", 95.0)
        n.coverage("t", "shop", 79.5)  # crossed again
        n.coverage("t", None, 0.0)
        await n.idle()
        await n.close()

    asyncio.run(go())
    assert [(t["system"], t["message"].facts[1][1]) for t in stub.tries] == [("slack", "70%"), ("slack", "79.5%")]
    assert "--min-coverage 80" in stub.tries[0]["message"].text


def test_notice_is_frozen() -> None:
    n = Notice("t", "approval", Message("a", "b"), "k")
    with pytest.raises(AttributeError):
        n.event = "x"  # type: ignore[misc]
