"""An engine with approved run artefacts to build datasets from, and the fake files / fine-tuning server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import Home, poll
from tests.fakes.finetune_server import DEFAULT_SCRIPT, INVALID_FILE, FineTuneFake
from tests.fakes.threaded import threaded
from tests.providers.test_cli_providers import _shim_path
from tests.runs.helpers import script, start, wait, write_json

KEY = "sk-test-finetune-KEY789abc"
AZURE_KEY = "azure-test-key-0123456789"
# One gate as the first step: the artefact's prompt is the agent's instructions and the run's feature.
WORKFLOWS: dict[str, Any] = {"tuned": {
    "agents": {"coder": {"task_kind": "summarise", "artefact": "diff",
                         "system_prompt": "You are the coder. Write the change for: {feature}"}},
    "steps": [{"id": "change", "type": "test.gate", "agents": ["coder"]}]}}
ANSWER = "diff --git a/app.py b/app.py\n+print('hello')"


@pytest.fixture(scope="module")
def fake() -> Iterator[FineTuneFake]:
    with threaded(lambda: FineTuneFake(KEY)) as f:
        yield f


@pytest.fixture
def vendor(fake: FineTuneFake) -> FineTuneFake:
    """The module's fake, reset for one test."""
    fake.script = list(DEFAULT_SCRIPT)
    fake.failure = dict(INVALID_FILE)
    fake.faults.clear()
    fake.requests.clear()
    fake.api_key = KEY
    return fake


@pytest.fixture(scope="module")
def thome(fake: FineTuneFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """One engine for the module (tests use their own tenants): starting one and running ten approved
    runs is most of a test's time."""
    with pytest.MonkeyPatch.context() as mp:
        yield from _home(mp, fake, tmp_path_factory.mktemp("ft"))


def _home(monkeypatch: pytest.MonkeyPatch, fake: FineTuneFake, tmp_path: Path) -> Iterator[Home]:
    monkeypatch.setenv("MUSUBI_TEST_RUNS", "1")  # test workflows and the scripted provider for the runs
    shim = _shim_path(tmp_path / "shim")  # the provider entry points until the venv is reinstalled
    if shim:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), shim) if p))
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    for var in ("ANTHROPIC_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    h = Home()
    write_json(h, "test-workflows.json", WORKFLOWS)
    script(h, replies={"1": [ANSWER]})
    try:
        h.start()
        yield h
    finally:
        h.cleanup()


def approved_runs(h: Home, tenant: str, features: list[str]) -> list[str]:
    """One run per feature, its gate approved, each done."""
    ids = []
    for feature in features:
        run = start(h, tenant, "tuned", feature)
        wait(h, tenant, run["id"], "waiting")
        status, body = h.raw("POST", f"/v1/runs/{run['id']}/approve", {}, tenant=tenant)
        assert status == 200, body
        assert wait(h, tenant, run["id"], "done", "failed", "stopped")["state"] == "done"
        ids.append(run["id"])
    return ids


def features(n: int) -> list[str]:
    return [f"feature number {i}: add a --json flag to command {i}" for i in range(n)]


def tune_job(h: Home, tenant: str, tune_id: str) -> dict[str, Any]:
    status, body = h.raw("GET", f"/v1/tune/jobs/{tune_id}", tenant=tenant)
    assert status == 200, body
    return dict(body["jobs"][0])


def wait_tune(h: Home, tenant: str, tune_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        j = tune_job(h, tenant, tune_id)
        return j if j["state"] in states else None

    return dict(poll(check, timeout=timeout))
