"""``musubi tune dataset|submit|status|cancel`` against a real engine and the fake vendor: output and exit codes."""

from __future__ import annotations

import json

from tests.cli.helpers import Cli
from tests.engine.helpers import Home
from tests.fakes.finetune_server import FineTuneFake
from tests.finetune.helpers import (
    KEY,
    approved_runs,
    features,
    wait_tune,
)


def test_cli_happy_path_and_its_json(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = h.new_tenant("cli")
    cli = Cli(str(h.dir))
    approved_runs(h, t, features(10))
    out = cli.ok("tune", "dataset", "--base-model", "gpt-4.1-mini", "--tenant", t).out
    assert "10 examples" in out and "x 3 epochs" in out and "musubi tune submit d-" in out
    d = cli.js("tune", "dataset", "--base-model", "gpt-4.1-mini", "--epochs", "2", "--tenant", t)
    assert (d["examples"], d["epochs"], d["trained_tokens"]) == (10, 2, d["tokens"] * 2)
    j = cli.js("tune", "submit", d["id"], "--provider", "openai", "--suffix", "cli", "--poll-ms", "50",
               "--tenant", t)
    assert j["state"] == "queued" and j["epochs"] == 2
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "succeeded"
    shown = cli.js("tune", "status", j["id"], "--tenant", t)
    assert shown["jobs"][0]["registered_model"] == done["registered_model"]
    assert shown["events"][0]["message"] == "The job has successfully completed"
    human = cli.ok("tune", "status", j["id"], "--tenant", t).out
    assert done["registered_model"] in human and "successfully completed" in human
    listed = cli.js("tune", "status", "--tenant", t)
    assert [x["id"] for x in listed["jobs"]] == [j["id"]]
    assert j["id"] in cli.ok("tune", "status", "--tenant", t).out
    r = cli.fails(2, "tune", "cancel", j["id"], "--tenant", t)
    assert "already ended" in r.err
    assert KEY not in json.dumps(listed) + human


def test_cli_refusals_and_exit_codes(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = h.new_tenant("cli")
    cli = Cli(str(h.dir))
    r = cli.fails(2, "tune", "dataset", "--base-model", "gpt-4.1-mini", "--tenant", t)
    assert "only 0 usable examples" in r.err and "at least 10" in r.err
    r = cli("tune", "dataset", "--base-model", "gpt-4.1-mini", "--tenant", t, "--json")
    assert r.rc == 2 and json.loads(r.out)["error"]["code"] == "too_few_examples"
    cli.fails(2, "tune", "dataset", "--base-model", "gpt-4.1-mini", "--epochs", "51", "--tenant", t)
    cli.fails(2, "tune", "dataset", "--tenant", t)  # --base-model is required
    cli.fails(2, "tune", "submit", "d-000000000000", "--provider", "anthropic", "--tenant", t)
    cli.fails(2, "tune", "submit", "not-an-id", "--provider", "openai", "--tenant", t)
    r = cli.fails(1, "tune", "submit", "d-000000000000", "--provider", "openai", "--tenant", t)
    assert "musubi tune dataset" in r.err
    cli.fails(1, "tune", "status", "t-000000000000", "--tenant", t)
    cli.fails(2, "tune", "status", "t-nope", "--tenant", t)

    approved_runs(h, t, features(10))
    cli.ok("quota", "set", "tokens", "10", "--per", "day", "--tenant", t)
    r = cli.fails(3, "tune", "dataset", "--base-model", "gpt-4.1-mini", "--tenant", t)
    assert "quota exceeded" in r.err
    assert not (h.dir / "tenants" / t / "finetune").exists() or not any((h.dir / "tenants" / t / "finetune").iterdir())
    h.client(t).post("/v1/members", {"user": "vic-member", "role": "member"})
    r = cli.fails(4, "tune", "submit", "d-000000000000", "--provider", "openai", "--tenant", t, "--as", "vic-member")
    assert "quotas.manage" in r.err
    assert vendor.requests == []
