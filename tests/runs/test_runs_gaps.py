"""The runs gaps of issue 12 on a real engine: a step's output so far, retrying one step with new calls,
provider latency per tenant, and the tenant switch that puts (redacted) prompt and output text in the audit."""

from __future__ import annotations

from tests.engine.helpers import Home, poll
from tests.runs.helpers import run_audit, script, sends, show, start, wait


def output(h: Home, tenant: str, run_id: str, step: str, **kw: str) -> tuple[int, dict]:
    return h.raw("GET", f"/v1/runs/{run_id}/output?step={step}", tenant=tenant, **kw)


def test_output_so_far_is_the_live_tail_while_a_call_streams_and_the_record_after(rhome: Home) -> None:
    t = rhome.new_tenant("out")
    partial = "Writing the parser first, then the tests. " * 3
    script(rhome, replies={"2": [partial]}, stall=["2"])  # step 2 streams its text, then never ends
    run = start(rhome, t, "two")
    rid = run["id"]

    def live() -> dict | None:
        status, body = output(rhome, t, rid, "2")
        return body if status == 200 and body["source"] == "live" and body["text"] == partial else None

    got = poll(live, timeout=30)
    assert (got["offset"], got["end"], got["truncated"], got["status"]) == (0, len(partial), False, "running")
    status, first = output(rhome, t, rid, "1")  # a finished step: its recorded output
    assert status == 200 and first["source"] == "record" and first["text"].startswith("reply 1/")
    assert first["status"] == "done" and first["end"] == len(first["text"])
    # Refusals: no such step (404 naming the steps), no step given (400), another tenant (404), bad id (400).
    status, body = output(rhome, t, rid, "9")
    assert status == 404 and body["error"]["code"] == "step_not_found" and "1, 2" in body["error"]["message"]
    status, body = rhome.raw("GET", f"/v1/runs/{rid}/output", tenant=t)
    assert status == 400 and "step" in body["error"]["message"]
    other = rhome.new_tenant("out")
    assert output(rhome, other, rid, "1")[0] == 404
    assert output(rhome, t, "r-nope", "1")[0] == 400
    # Cancelled mid-call: the call recorded nothing, so step 2 has no output; the live tail is gone.
    assert rhome.raw("POST", f"/v1/runs/{rid}/cancel", tenant=t)[0] == 200
    wait(rhome, t, rid, "cancelled")

    def gone() -> dict | None:
        # The run reads cancelled as soon as the cancel is committed; the cancelled call's task drops the tail
        # a moment later, when it unwinds.
        status, body = output(rhome, t, rid, "2")
        return body if status == 200 and body["source"] == "none" else None

    assert poll(gone, timeout=30)["text"] == ""
    status, body = output(rhome, t, rid, "1")  # still read from the record after the run ended
    assert body["source"] == "record" and body["text"] == first["text"]
    # The step the cancel cut short says so, and is retried on its own: step 1 is not sent again.
    assert [s["status"] for s in show(rhome, t, rid)["steps"]] == ["done", "cancelled"]
    script(rhome)
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "2"}, tenant=t)
    assert status == 200, body
    assert wait(rhome, t, rid, "done", "failed", "stopped")["state"] == "done"
    assert [s["key"].split(":")[1] for s in sends(rhome) if s["key"].startswith(rid)] == ["1", "2", "2"]


def test_retry_runs_one_failed_step_again_without_re_running_the_rest(rhome: Home) -> None:
    t = rhome.new_tenant("retry", members={"vera": "viewer"})
    script(rhome, fail={"2": "bad_request"})
    rid = start(rhome, t, "three")["id"]
    failed = wait(rhome, t, rid, "failed")
    assert [s["status"] for s in failed["steps"]] == ["done", "failed", "pending"]
    # Refused, nothing changed: a done step, an unknown step, a viewer.
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "1"}, tenant=t)
    assert status == 409 and body["error"]["code"] == "step_state"
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "7"}, tenant=t)
    assert status == 404 and body["error"]["code"] == "step_not_found"
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "2"}, tenant=t, as_user="vera")
    assert status == 403 and "runs.start" in body["error"]["message"]
    assert show(rhome, t, rid)["state"] == "failed"
    assert not [e for e in run_audit(rhome, t, rid) if e["action"] == "run.retry" and e["outcome"] == "success"]
    script(rhome)  # the provider answers again
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "2"}, tenant=t)
    assert status == 200, body
    assert body["step"] == "2" and body["superseded"] == [] and body["run"]["state"] == "queued"
    done = wait(rhome, t, rid, "done", "failed", "stopped")
    assert done["state"] == "done", done
    paths = [s["key"].split(":")[1] for s in sends(rhome) if s["key"].startswith(rid)]
    assert sorted(paths) == ["1", "2", "3"]  # step 1 was not sent again
    retried = [e for e in run_audit(rhome, t, rid) if e["action"] == "run.retry" and e["outcome"] == "success"]
    assert len(retried) == 1 and retried[0]["details"]["step"] == "2" and retried[0]["actor"]


def test_a_retried_step_sends_its_completed_calls_again_as_new_attempts(rhome: Home) -> None:
    """Charge once: a retry is a new attempt of each call of the step (a new key), never an answer from the
    record; the superseded calls stay charged, and the run's other calls are not sent again."""
    t = rhome.new_tenant("retry")
    script(rhome, replies={"1": ["same", "same", "c", "d", "e", "f"]})
    rid = start(rhome, t, "loop")["id"]
    stuck = wait(rhome, t, rid, "failed", "done")
    assert stuck["stop_code"] == "stuck"
    used = rhome.quota(t, "tokens", "day")["used"]
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/resume", tenant=t)
    assert status == 409  # stuck is not resumable: the same calls would answer the same
    status, body = rhome.raw("POST", f"/v1/runs/{rid}/retry", {"step": "1"}, tenant=t)
    assert status == 200, body
    assert body["superseded"] == [f"{rid}:1:turn1:1", f"{rid}:1:turn2:1"]
    done = wait(rhome, t, rid, "done", "failed", "stopped")
    assert done["state"] == "done", done
    keys = [s["key"] for s in sends(rhome) if s["key"].startswith(rid)]
    assert keys == [f"{rid}:1:turn1:1", f"{rid}:1:turn2:1", f"{rid}:1:turn1:2", f"{rid}:1:turn2:2",
                    f"{rid}:1:turn3:1", f"{rid}:1:turn4:1"]
    assert rhome.quota(t, "tokens", "day")["used"] == used + 4 * 120  # the first two stay charged, once
    status, out = output(rhome, t, rid, "1")
    assert out["text"] == "f"  # the step's output is its new attempt's


def test_provider_latency_is_per_tenant(rhome: Home) -> None:
    t, other = rhome.new_tenant("lat"), rhome.new_tenant("lat")
    rid = start(rhome, t, "two")["id"]
    wait(rhome, t, rid, "done")
    rows = rhome.client(t).get("/v1/providers/stats")
    assert [(r["tenant"], r["provider"], r["count"]) for r in rows] == [(t, "scripted-test", 2)]
    assert 0 <= rows[0]["p50_ms"] <= rows[0]["p95_ms"] <= rows[0]["p99_ms"]
    assert rhome.client(other).get("/v1/providers/stats") == []  # another tenant's calls are not shown


def test_audit_text_switch_is_off_by_default_owner_only_audited_and_redacts_keys(rhome: Home) -> None:
    t = rhome.new_tenant("atext", members={"mia": "member", "ada": "admin"})
    secret = "sk-live" + "a1b2c3d4e5f6g7h8"
    feature = f"add a --json flag; our key is {secret} and db password=hunter22xyz"
    assert rhome.client(t).get("/v1/run-settings")["audit_text"] is False
    rid = start(rhome, t, "two", feature)["id"]
    wait(rhome, t, rid, "done")
    calls = [e for e in run_audit(rhome, t, rid) if e["action"] == "run.call"]
    assert calls and not any("prompt" in e["details"] or "output" in e["details"] for e in calls)
    for who in ("mia", "ada"):  # tenant.manage only: a member and an admin are refused, nothing changes
        status, body = rhome.raw("PUT", "/v1/run-settings", {"audit_text": True}, tenant=t, as_user=who)
        assert status == 403 and "tenant.manage" in body["error"]["message"], body
    status, body = rhome.raw("PUT", "/v1/run-settings", {"audit_text": "yes"}, tenant=t)
    assert status == 400 and "true or false" in body["error"]["message"]
    assert rhome.client(t).get("/v1/run-settings")["audit_text"] is False
    on = rhome.client(t).put("/v1/run-settings", {"audit_text": True})
    assert on["audit_text"] is True and on["updated_by"]
    changed = [e for e in rhome.audit(t) if e["action"] == "run.settings" and e["outcome"] == "success"]
    assert changed[-1]["details"] == {"audit_text": True, "was": False}
    rid2 = start(rhome, t, "two", feature)["id"]
    wait(rhome, t, rid2, "done")
    calls = [e for e in run_audit(rhome, t, rid2) if e["action"] == "run.call"]
    assert len(calls) == 2
    first = next(e for e in calls if e["details"]["step"] == "1")
    assert "add a --json flag" in first["details"]["prompt"] and "[redacted]" in first["details"]["prompt"]
    for e in calls:
        assert e["details"]["prompt"].startswith("system: ") and e["details"]["output"].startswith("reply ")
        assert secret not in str(e) and "hunter22xyz" not in str(e)
    rhome.client(t).put("/v1/run-settings", {"audit_text": False})
    rid3 = start(rhome, t, "two", feature)["id"]
    wait(rhome, t, rid3, "done")
    assert not any("prompt" in e["details"] for e in run_audit(rhome, t, rid3) if e["action"] == "run.call")
