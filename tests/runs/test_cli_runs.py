"""``musubi run`` and ``musubi runs ...`` through the real CLI (exit codes, --json, --detach, no provider)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli, short_home
from tests.engine.helpers import poll
from tests.runs.helpers import WORKFLOWS


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSUBI_TEST_RUNS", "1")
        c = Cli(short_home())
        (Path(c.home) / "test-workflows.json").write_text(json.dumps(WORKFLOWS))
        (Path(c.home) / "test-provider.json").write_text(json.dumps({"delay_s": 0.0}))
        try:
            c.ok("engine", "start")
            yield c
        finally:
            c.stop()
            shutil.rmtree(c.home, ignore_errors=True)


def test_run_streams_to_the_end_and_shows_estimate_vs_actual(cli: Cli) -> None:
    r = cli.ok("run", "two", "--feature", "add a flag")
    assert "step 1" in r.err and "done" in r.out
    done = cli.js("run", "two", "--feature", "add a flag")
    assert done["state"] == "done" and len(done["steps"]) == 2
    shown = cli.ok("runs", "show", done["id"])
    assert "EST TOKENS" in shown.out and "estimated" in shown.out
    logs = cli.js("runs", "logs", done["id"])
    assert logs["lines"][0]["kind"] == "state"
    assert any(x["id"] == done["id"] for x in cli.js("runs", "list"))


def test_detach_returns_the_id_and_the_run_goes_on(cli: Cli) -> None:
    started = cli.js("run", "two", "--feature", "x", "--detach")
    assert started["id"].startswith("r-") and started["state"] == "queued"
    final = cli.js("runs", "show", started["id"], "--follow")
    assert final["state"] == "done"


def test_exit_codes_quota_permission_usage(cli: Cli) -> None:
    cli.ok("tenant", "create", "qt")
    cli.ok("--tenant", "qt", "quota", "set", "requests", "1", "--per", "hour")
    r = cli.fails(3, "--tenant", "qt", "run", "two", "--feature", "x")
    assert "quota" in r.err and "musubi runs resume" in r.err
    cli.ok("--tenant", "qt", "member", "add", "vera", "--role", "viewer")
    cli.fails(4, "--tenant", "qt", "--as", "vera", "run", "two", "--feature", "x")
    cli.fails(2, "runs", "show", "not-a-run")
    r = cli.fails(1, "run", "nope", "--feature", "x")
    assert "known workflows" in r.err


def test_a_run_that_ends_badly_is_an_error_object_with_json(cli: Cli) -> None:
    cli.ok("tenant", "create", "qj")
    cli.ok("--tenant", "qj", "quota", "set", "requests", "1", "--per", "hour")
    r = cli.fails(3, "--tenant", "qj", "run", "two", "--feature", "x", "--json")  # stopped by the quota
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded" and err["exit_code"] == 3 and err["stop_code"] == "quota"
    assert err["run"]["state"] == "stopped" and err["run"]["id"] == err["run_id"]
    assert "quota exceeded" in err["message"] and f"musubi runs resume {err['run_id']}" in err["message"]
    assert err["message"] in r.err  # the same words on stderr
    shown = cli.fails(3, "--tenant", "qj", "runs", "show", err["run_id"], "--follow", "--json")  # ended already
    assert shown.json()["error"]["run_id"] == err["run_id"]
    r = cli.fails(1, "run", "nope", "--feature", "x", "--json")
    assert r.json()["error"]["code"] == "unknown_workflow" and "known workflows" in r.err


def test_gate_approve_from_the_cli(cli: Cli) -> None:
    started = cli.js("run", "gated", "--feature", "x", "--detach")
    poll(lambda: cli.js("runs", "show", started["id"])["state"] == "waiting", timeout=30)
    cli.fails(1, "runs", "approve", started["id"], "--sha256", "0" * 64)  # not what the gate shows
    r = cli.js("runs", "approve", started["id"], "--comment", "ok")
    assert r["decision"] == "approve"
    cli.fails(1, "runs", "approve", started["id"], "--gate", "change")  # never asked twice


def test_no_provider_says_what_to_set() -> None:
    c = Cli(short_home())
    try:
        r = c.fails(1, "run", "spec", "--feature", "x", env={"MUSUBI_TEST_RUNS": ""})
        for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_ENDPOINT", "OLLAMA_HOST"):
            assert var in r.err, r.err
        r = c.fails(1, "run", "spec", "--feature", "x", "--json", env={"MUSUBI_TEST_RUNS": ""})
        err = r.json()["error"]
        assert err["code"] == "provider_not_configured" and err["exit_code"] == 1 and "OPENAI_API_KEY" in err["message"]
    finally:
        c.stop()
        shutil.rmtree(c.home, ignore_errors=True)


def test_output_retry_settings_and_provider_stats_from_the_cli(cli: Cli) -> None:
    script = Path(cli.home) / "test-provider.json"
    script.write_text(json.dumps({"delay_s": 0.0, "fail": {"2": "bad_request"}}))
    try:
        r = cli.fails(1, "run", "two", "--feature", "x", "--json")  # a failed run exits 1, said on stderr too
        err = json.loads(r.out)["error"]
        failed = err["run"]
        human = cli.fails(1, "run", "two", "--feature", "x")
    finally:
        script.write_text(json.dumps({"delay_s": 0.0}))
    rid = failed["id"]
    assert failed["state"] == "failed" and err["code"] == "run_failed" and err["exit_code"] == 1
    assert err["run_id"] == rid and err["stop_code"] == "error" and "scripted failure" in err["message"]
    assert f"musubi: error: run {rid} failed (error): step 2: " in r.err
    assert "failed (error): step 2: " in human.err and "scripted failure" in human.err and not human.out.strip()
    out = cli.js("runs", "output", rid, "1")
    assert out["source"] == "record" and out["text"].startswith("reply 1/")
    human = cli.ok("runs", "output", rid, "1")
    assert human.out.strip() == out["text"] and "recorded" in human.err
    cli.fails(1, "runs", "output", rid, "9")  # no such step: named in the message
    cli.fails(1, "runs", "retry", rid, "1")  # done: not retryable
    cli.fails(2, "runs", "retry", "not-a-run", "1")
    retried = cli.js("runs", "retry", rid, "2")
    assert retried["step"] == "2" and retried["run"]["state"] == "queued"
    assert cli.js("runs", "show", rid, "--follow")["state"] == "done"
    stats = cli.js("providers", "stats")
    assert stats and {r["provider"] for r in stats} == {"scripted-test"} and all(r["count"] > 0 for r in stats)
    assert "P95 MS" in cli.ok("providers", "stats").out
    assert cli.js("runs", "settings")["audit_text"] is False
    assert cli.js("runs", "settings", "--audit-text", "on")["audit_text"] is True
    assert "on (set by" in cli.ok("runs", "settings").out
    cli.fails(2, "runs", "settings", "--audit-text", "maybe")
    assert cli.js("runs", "settings", "--audit-text", "off")["audit_text"] is False
