"""A run through the real OpenAI provider (connectors/llm) against the fake OpenAI server: the usage
charged is the usage the server reported, the key appears nowhere, a 429 is retried by the provider
and a mid-stream drop becomes a new attempt that is charged once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.helpers import Home
from tests.fakes.llm_servers import FakeLLMServer, Reply, fake_openai  # noqa: F401  (fixture)
from tests.providers.test_cli_providers import _shim_path
from tests.runs.helpers import WORKFLOWS, run_audit, wait, write_json

KEY = "sk-test-openai-KEY123"
MODEL = "gpt-6-luna"


@pytest.fixture
def vhome(monkeypatch: pytest.MonkeyPatch, fake_openai: FakeLLMServer,  # noqa: F811
          tmp_path: Path) -> Iterator[tuple[Home, FakeLLMServer]]:
    monkeypatch.setenv("MUSUBI_TEST_RUNS", "1")  # the test workflows only: no provider script, real providers
    shim = _shim_path(tmp_path / "shim")  # the provider entry points until the venv is reinstalled
    if shim:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), shim) if p))
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    for var in ("ANTHROPIC_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    h = Home()
    write_json(h, "test-workflows.json", WORKFLOWS)
    try:
        h.start()
        yield h, fake_openai
    finally:
        h.cleanup()


def test_usage_charged_is_usage_reported_and_no_key_anywhere(vhome: tuple[Home, FakeLLMServer]) -> None:
    h, fake = vhome
    fake.push(Reply(text="first answer", input_tokens=31, output_tokens=7),
              Reply(status=429, retry_after="0"),  # the provider retries this before any answer
              Reply(text="second answer", input_tokens=40, output_tokens=11))
    t = h.new_tenant("vend")
    status, run = h.raw("POST", "/v1/runs", {"workflow": "two", "feature": "x", "model": MODEL}, tenant=t)
    assert status == 201, run
    done = wait(h, t, run["id"], "done", "failed", "stopped")
    assert done["state"] == "done", done
    assert done["tokens"] == 31 + 7 + 40 + 11
    assert h.quota(t, "tokens", "day")["used"] == 89
    assert len(fake.chat_requests()) == 3  # two calls, one of them retried after the 429
    events = run_audit(h, t, run["id"])
    assert KEY not in json.dumps(events) and KEY not in json.dumps(done)
    calls = [e for e in events if e["action"] == "run.call"]
    assert [(c["details"]["input_tokens"], c["details"]["output_tokens"]) for c in calls] == [(31, 7), (40, 11)]


def test_a_dropped_stream_is_a_new_attempt_charged_once(vhome: tuple[Home, FakeLLMServer]) -> None:
    h, fake = vhome
    fake.push(Reply(text="a b c d e f g h", drop_after=2), Reply(text="whole", input_tokens=12, output_tokens=3))
    t = h.new_tenant("vend")
    status, run = h.raw("POST", "/v1/runs", {"workflow": "loop", "feature": "x", "model": MODEL,
                                             "max_step_turns": 2}, tenant=t)
    r = wait(h, t, run["id"], "done", "failed", "stopped")
    # The cut call was recorded failed and released (a turn: it was sent); attempt 2 answered; the
    # step cap (2 calls sent) then stops the loop's next turn: exactly one charge.
    assert r["stop_code"] == "turn_cap" and r["turns"] == 2, r
    assert h.quota(t, "tokens", "day")["used"] == 15
    fails = [e for e in run_audit(h, t, run["id"]) if e["action"] == "run.call" and e["outcome"] == "error"]
    assert len(fails) == 1
