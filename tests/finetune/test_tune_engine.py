"""Provider fine-tuning through a real engine: datasets from approved runs, quotas, the job lifecycle at the fake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.api.tune import TuneDataset, TuneJob, TuneJobs
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.fakes.finetune_server import FineTuneFake
from tests.finetune.helpers import (
    ANSWER,
    KEY,
    approved_runs,
    features,
    tune_job,
    wait_tune,
)

SECRET_FEATURE = "add --json for ana@example.com; our key is sk-proj-AbCdEf0123456789xyz"


def _tenant(h: Home, n: int = 10, first: str | None = None) -> str:
    t = h.new_tenant("ft")
    approved_runs(h, t, ([first] if first else []) + features(n - (1 if first else 0)))
    return t


def _dataset(h: Home, t: str, model: str = "gpt-4.1-mini", **kw: Any) -> dict[str, Any]:
    status, d = h.raw("POST", "/v1/tune/datasets", {"base_model": model, **kw}, tenant=t)
    assert status == 201, d
    return dict(d)


def _submit(h: Home, t: str, dataset: str, provider: str = "openai", **kw: Any) -> dict[str, Any]:
    status, j = h.raw("POST", "/v1/tune/jobs", {"dataset": dataset, "provider": provider, "poll_ms": 50, **kw},
                      tenant=t)
    assert status == 201, j
    return dict(j)


def _actions(h: Home, t: str, resource: str) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in h.audit(t) if e["resource"] == resource]


def _quota(h: Home, t: str, limit: int) -> None:
    status, body = h.raw("PUT", "/v1/quotas", {"metric": "tokens", "period": "day", "limit": limit}, tenant=t)
    assert status == 200, body


def _ledger(h: Home, t: str) -> int:
    return int(h.quota(t, "tokens", "day")["used"])


def test_dataset_success_registers_the_model_with_prices_and_lifecycle(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h, first=SECRET_FEATURE)
    d = _dataset(h, t)
    assert (d["examples"], d["epochs"], d["base_model"]) == (10, 3, "gpt-4.1-mini")
    assert d["trained_tokens"] == d["tokens"] * 3 and d["skipped"] == {}
    assert d["scrubbed"] == {"email": 2, "api_key": 2}  # system (the rendered feature) and user each
    lines = [json.loads(x) for x in Path(d["path"]).read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"messages": [
        {"role": "system", "content": "You are the coder. Write the change for: add --json for [email]; our key is "
                                      "[secret]"},
        {"role": "user", "content": "add --json for [email]; our key is [secret]"},
        {"role": "assistant", "content": ANSWER}]}
    assert [m["messages"][1]["content"] for m in lines[1:]] == features(9)
    used_before = _ledger(h, t)

    j = _submit(h, t, d["id"], suffix="team")
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "succeeded", done
    vendor_job = vendor.jobs[done["vendor_job_id"]]
    assert vendor_job["hyperparameters"] == {"n_epochs": 3} and vendor_job["model"] == "gpt-4.1-mini"
    assert vendor.contents[done["file_id"]] == Path(d["path"]).read_bytes()  # the file as built, byte for byte
    model = done["registered_model"]
    assert model == f"openai/{vendor_job['fine_tuned_model']}" and ":team:" in model
    assert done["trained_tokens"] == 4_242 and done["cost_usd"] == "0.021210"  # 4,242 x $5.00 / 1M
    assert _ledger(h, t) == used_before + 4_242

    status, models = h.raw("GET", "/v1/models", tenant=t)
    assert status == 200, models
    entry = next(m for m in models["models"] if m["id"] == model)
    base = next(m for m in models["models"] if m["id"] == "gpt-4.1-mini")
    assert (entry["input_per_mtok"], entry["output_per_mtok"]) == ("0.80", "3.20")  # fine-tuned prices
    # It lives as long as its base model (deprecated in the shipped registry by now) and names it as replacement.
    assert (entry["status"], entry.get("retires_on"), entry["replacement"]) == (
        base["status"], base.get("retires_on"), "gpt-4.1-mini")
    other = h.new_tenant("ft")
    _, theirs = h.raw("GET", "/v1/models", tenant=other)
    assert model not in {m["id"] for m in theirs["models"]}  # registered for this tenant only

    poll(lambda: ("tune.register", "success") in _actions(h, t, f"tune:{j['id']}"))  # committed with the state
    _exactly(d, TuneDataset)  # the answers have their documented shapes, no key more
    _exactly(j, TuneJob)
    shown = h.raw("GET", f"/v1/tune/jobs/{j['id']}", tenant=t)[1]
    _exactly(shown, TuneJobs)
    _exactly(h.raw("GET", "/v1/tune/jobs", tenant=t)[1], TuneJobs)
    _exactly(shown["jobs"][0], TuneJob)
    assert _actions(h, t, f"tune:{j['id']}") == [
        ("tune.submit", "success"), ("tune.upload", "success"), ("tune.create", "success"),
        *[("tune.status", "success")] * 3, ("tune.register", "success")]
    everything = json.dumps(h.audit(t)) + json.dumps(done)
    assert KEY not in everything
    status, job = h.raw("GET", f"/v1/jobs/{j['job']}", tenant=t)
    assert job["kind"] == "tune.provider" and job["state"] == "done"


def test_refusals_change_nothing(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h, n=3)
    status, body = h.raw("POST", "/v1/tune/datasets", {"base_model": "gpt-4.1-mini"}, tenant=t)
    assert status == 400 and body["error"]["code"] == "too_few_examples", body
    assert body["error"]["examples"] == 3 and "at least 10" in body["error"]["message"]
    approved_runs(h, t, [f"more {i}" for i in range(7)])
    status, body = h.raw("POST", "/v1/tune/datasets", {"base_model": "claude-sonnet-5"}, tenant=t)
    assert status == 400 and "no training price" in body["error"]["message"], body
    status, body = h.raw("POST", "/v1/tune/datasets", {"base_model": "gpt-4.1-mini", "epochs": 0}, tenant=t)
    assert status == 400 and body["error"]["field"] == "epochs", body

    _quota(h, t, 100)
    status, body = h.raw("POST", "/v1/tune/datasets", {"base_model": "gpt-4.1-mini"}, tenant=t)
    assert status == 429 and body["error"]["code"] == "quota_exceeded", body
    finetune_dir = h.dir / "tenants" / t / "finetune"
    assert not finetune_dir.exists() or not any(finetune_dir.iterdir())
    assert not [a for a in h.audit(t) if a["action"] == "tune.dataset" and a["outcome"] == "success"]

    _quota(h, t, 1_000_000)
    d = _dataset(h, t)
    _quota(h, t, _ledger(h, t) + 100)  # room for less than the training
    status, body = h.raw("POST", "/v1/tune/jobs", {"dataset": d["id"], "provider": "openai"}, tenant=t)
    assert status == 429 and body["error"]["code"] == "quota_exceeded", body
    assert h.raw("GET", "/v1/tune/jobs", tenant=t)[1] == {"jobs": []}
    assert vendor.requests == []  # nothing was sent
    status, body = h.raw("POST", "/v1/tune/jobs", {"dataset": d["id"], "provider": "azure"}, tenant=t)
    assert status == 400 and "not azure" in body["error"]["message"], body
    status, body = h.raw("POST", "/v1/tune/jobs", {"dataset": "d-000000000000", "provider": "openai"}, tenant=t)
    assert status == 404, body
    _quota(h, t, 10**9)
    Path(d["path"]).write_text("{}\n", encoding="utf-8")  # changed since it was built
    status, body = h.raw("POST", "/v1/tune/jobs", {"dataset": d["id"], "provider": "openai"}, tenant=t)
    assert status == 200 and body["error"]["code"] == "verification_failed" and "changed" in body["error"]["message"]
    Path(d["path"]).unlink()
    status, body = h.raw("POST", "/v1/tune/jobs", {"dataset": d["id"], "provider": "openai"}, tenant=t)
    assert body["error"]["code"] == "verification_failed" and "cannot be read" in body["error"]["message"], body
    assert h.raw("GET", "/v1/tune/jobs", tenant=t)[1] == {"jobs": []} and vendor.requests == []


def test_a_failed_job_reports_the_vendor_error(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    vendor.script = ["validating_files", "failed"]
    j = _submit(h, t, _dataset(h, t)["id"])
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "failed" and done["registered_model"] is None
    assert done["error"] == {"code": "invalid_training_file", "message": "The job failed due to an invalid training "
                                                                         "file. Expected file to have JSONL format."}
    job = poll(lambda: (lambda b: b if b["state"] == "failed" else None)(h.raw("GET", f"/v1/jobs/{j['job']}",
                                                                               tenant=t)[1]))
    assert "invalid_training_file" in job["error"]
    shown = h.raw("GET", f"/v1/tune/jobs/{j['id']}", tenant=t)[1]
    assert shown["events"][0] == {"created_at": shown["events"][0]["created_at"], "level": "error",
                                  "message": done["error"]["message"]}
    poll(lambda: ("tune.fail", "error") in _actions(h, t, f"tune:{j['id']}"))


def test_cancel_stops_the_vendor_job(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    vendor.script = ["validating_files", "running"]  # runs until cancelled
    j = _submit(h, t, _dataset(h, t)["id"])
    wait_tune(h, t, j["id"], "submitted")
    poll(lambda: tune_job(h, t, j["id"])["vendor_status"] == "running")
    status, body = h.raw("POST", f"/v1/tune/jobs/{j['id']}/cancel", tenant=t)
    assert status == 200, body
    done = wait_tune(h, t, j["id"], "cancelled", "failed", "succeeded")
    assert done["state"] == "cancelled" and vendor.jobs[done["vendor_job_id"]]["status"] == "cancelled"
    # The answer shows the state as soon as it is queued; its audit event is in the same commit.
    poll(lambda: ("tune.cancel", "success") in _actions(h, t, f"tune:{j['id']}"))
    status, body = h.raw("POST", f"/v1/tune/jobs/{j['id']}/cancel", tenant=t)
    assert status == 400 and "already ended" in body["error"]["message"]


def test_rate_limited_polls_wait_and_go_on(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    body = {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                      "code": "rate_limit_exceeded"}}
    vendor.fail(429, headers={"Retry-After": "0"}, body=body, path="/fine_tuning/jobs/", times=4)
    j = _submit(h, t, _dataset(h, t)["id"])
    assert wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")["state"] == "succeeded"
    assert sum(1 for r in vendor.requests if r.method == "GET" and "/fine_tuning/jobs/" in r.path) >= 4 + 4


def test_azure_job_goes_to_the_azure_routes(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    d = _dataset(h, t, "azure/gpt-4.1-mini", epochs=2)
    j = _submit(h, t, d["id"], "azure")
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "succeeded", done
    assert {r.path.split("/")[1] for r in vendor.requests} == {"openai"}
    assert all(r.query.get("api-version") and r.headers.get("api-key") == KEY for r in vendor.requests)
    assert vendor.jobs[done["vendor_job_id"]]["model"] == "gpt-4.1-mini"
    assert done["registered_model"].startswith("azure/ft:gpt-4.1-mini")


def test_kill_9_while_polling_resumes_the_same_vendor_job(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    vendor.script = ["validating_files", "running"]  # runs until the test lets it finish
    j = _submit(h, t, _dataset(h, t)["id"])
    poll(lambda: tune_job(h, t, j["id"])["vendor_status"] == "running")
    h.kill9()
    vendor.script = ["validating_files", "running", "succeeded"]
    h.start()  # the interrupted engine job resumes from the row: the vendor's ids were committed
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "succeeded", done
    assert vendor.count("POST", "/files") == 1 and vendor.count("POST", "/fine_tuning/jobs") == 1
    assert done["registered_model"] == f"openai/{vendor.jobs[done['vendor_job_id']]['fine_tuned_model']}"


def test_a_refused_key_fails_the_job_and_is_never_logged(thome: Home, vendor: FineTuneFake) -> None:
    h = thome
    t = _tenant(h)
    d = _dataset(h, t)
    vendor.api_key = "sk-the-vendor-expects-another-key"  # so the engine's key is refused with OpenAI's 401
    j = _submit(h, t, d["id"])
    done = wait_tune(h, t, j["id"], "succeeded", "failed", "cancelled")
    assert done["state"] == "failed" and done["file_id"] is None and done["vendor_job_id"] is None
    assert done["error"]["code"] == "invalid_api_key" and "Incorrect API key provided" in done["error"]["message"]
    poll(lambda: ("tune.fail", "error") in _actions(h, t, f"tune:{j['id']}"))
    log = h.paths.engine_log.read_text(encoding="utf-8", errors="replace")
    for text in (log, json.dumps(h.audit(t)), json.dumps(done)):
        assert KEY not in text and KEY[-8:] not in text
