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
    finally:
        c.stop()
        shutil.rmtree(c.home, ignore_errors=True)
