"""Quota stop then resume, budgets (run, agent, fan-out), turn caps, the stuck detector, cancellation."""

from __future__ import annotations

from tests.engine.helpers import Home, poll
from tests.runs.helpers import run_audit, script, sends, show, start, wait


def test_quota_hit_stops_the_run_and_resume_continues_after_it_is_raised(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    c = rhome.client(t)
    c.put("/v1/quotas", {"metric": "requests", "limit": 1, "period": "hour"})
    run = start(rhome, t, "two")
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["state"] == "stopped" and r["stop_code"] == "quota" and "quota exceeded" in r["reason"], r
    assert [s["status"] for s in r["steps"]] == ["done", "stopped"]
    assert len(sends(rhome)) == 1
    c.put("/v1/quotas", {"metric": "requests", "limit": 10, "period": "hour"})
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/resume", {}, tenant=t)
    assert status == 200, body
    r = wait(rhome, t, run["id"], "done", "stopped", "failed")
    assert r["state"] == "done" and len(sends(rhome)) == 2  # step 1 was not sent again
    assert rhome.quota(t, "requests", "hour")["used"] == 2


def test_run_budget_and_turn_cap_stop_before_dispatch(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "two", budget_tokens=1)
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "budget" and sends(rhome) == [], r
    run = start(rhome, t, "loop", max_step_turns=2)
    script(rhome, replies={"1": ["a", "b", "c", "d"]})
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "turn_cap" and r["turns"] == 2, r


def test_fanout_is_checked_against_budgets_before_any_branch_starts(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "agent_budget")  # agent b may use 1 token: the whole fan-out is refused
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "budget" and "agent b" in r["reason"] and sends(rhome) == [], r
    run = start(rhome, t, "fanout", budget_tokens=2_000)  # 3 calls expected to need more than that
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "budget" and sends(rhome) == [], r


def test_stuck_detector_stops_repeated_and_alternating_output(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    script(rhome, replies={"1": ["same", "same", "same", "same"]})
    r = wait(rhome, t, start(rhome, t, "loop")["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "stuck" and "same output" in r["reason"] and r["turns"] == 2, r
    script(rhome, replies={"1": ["A", "B", "A", "B"]})
    r = wait(rhome, t, start(rhome, t, "loop")["id"], "stopped", "done", "failed")
    assert r["stop_code"] == "stuck" and "alternated" in r["reason"], r
    status, body = rhome.raw("POST", f"/v1/runs/{r['id']}/resume", {}, tenant=t)
    assert status == 409 and body["error"]["code"] == "run_not_resumable"


def test_cancel_a_running_run_releases_its_reservation(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    script(rhome, hang=["1"])
    run = start(rhome, t, "two")
    poll(lambda: show(rhome, t, run["id"])["turns"] == 1, timeout=30)
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/cancel", tenant=t)
    assert status == 200, body
    r = wait(rhome, t, run["id"], "cancelled")
    assert r["stop_code"] == "cancelled"
    q = rhome.quota(t, "tokens", "day")
    assert q["reserved"] == 0 and q["used"] == 0  # the unanswered call was released, not charged
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/cancel", tenant=t)
    assert status == 409
    assert any(e["action"] == "run.cancel" for e in run_audit(rhome, t, run["id"]))


def test_a_viewer_cannot_start_or_approve(rhome: Home) -> None:
    t = rhome.new_tenant("run", members={"vera": "viewer"})
    status, body = rhome.raw("POST", "/v1/runs", {"workflow": "two", "feature": "x"}, tenant=t, as_user="vera")
    assert status == 403 and "runs.start" in body["error"]["message"]
    assert rhome.client(t).get("/v1/runs") == []


def test_cancelling_a_run_at_a_gate_closes_the_gate(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "gated")
    wait(rhome, t, run["id"], "waiting")
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/cancel", tenant=t)
    assert status == 200, body
    r = wait(rhome, t, run["id"], "cancelled")
    assert r["approvals"][0]["state"] == "closed" and r["pending_gate"] is None
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/approve", {"gate": "change"}, tenant=t)
    assert status == 409 and body["error"]["code"] == "gate_answered"
