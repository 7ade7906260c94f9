"""A run end to end against the scripted provider: charged once, audited without text, logged."""

from __future__ import annotations

import json

from tests.engine.helpers import Home
from tests.runs.helpers import run_audit, sends, show, start, wait


def test_a_run_completes_and_charges_exactly_what_the_provider_reported(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "two", feature="SECRET-FEATURE-TEXT")
    assert run["state"] == "queued" and run["id"].startswith("r-")
    done = wait(rhome, t, run["id"], "done", "failed", "stopped")
    assert done["state"] == "done", done
    assert [s["status"] for s in done["steps"]] == ["done", "done"]
    # The scripted provider reports 100 in + 20 out per call; two calls.
    assert len(sends(rhome)) == 2
    assert done["tokens"] == 240
    ledger = rhome.quota(t, "tokens", "day")
    assert ledger["used"] == 240 and ledger["reserved"] == 0
    # Estimated vs actual per step is there.
    assert all(s["estimate"]["tokens"] for s in done["steps"])
    events = run_audit(rhome, t, run["id"])
    actions = [e["action"] for e in events]
    assert actions[0] == "run.start" and actions.count("run.call") == 2 and actions[-1] == "run.finish"
    text = json.dumps(events)
    assert "SECRET-FEATURE-TEXT" not in text and "reply 1/reply" not in text  # no prompt, no output
    call = next(e for e in events if e["action"] == "run.call")
    assert {"run", "step", "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "outcome"} <= set(
        call["details"])


def test_unknown_workflow_and_bad_ids_are_clear_and_change_nothing(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    status, body = rhome.raw("POST", "/v1/runs", {"workflow": "nope", "feature": "x"}, tenant=t)
    assert status == 404 and "known workflows" in body["error"]["message"]
    status, body = rhome.raw("GET", "/v1/runs/r-xyz", tenant=t)
    assert status == 400 and "run ids look like" in body["error"]["message"]
    status, body = rhome.raw("POST", "/v1/runs", {"workflow": "two", "feature": ""}, tenant=t)
    assert status == 400
    assert rhome.client(t).get("/v1/runs") == []


def test_logs_list_and_no_text_in_logs(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "two", feature="SECRET-FEATURE-TEXT")
    wait(rhome, t, run["id"], "done")
    rows = rhome.client(t).get("/v1/runs")
    assert [r["id"] for r in rows] == [run["id"]]
    logs = rhome.client(t).get(f"/v1/runs/{run['id']}/logs")
    assert logs["lines"] and "SECRET" not in json.dumps(logs)
    assert show(rhome, t, run["id"])["turns"] == 2
