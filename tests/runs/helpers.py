"""Starting and watching runs against the scripted test provider (core/orchestration/testkit.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.engine.helpers import Home, poll

AGENTS = {
    "writer": {"task_kind": "summarise"},
    "coder": {"task_kind": "summarise", "artefact": "diff"},
    "a": {"task_kind": "summarise"},
    "b": {"task_kind": "summarise"},
    "c": {"task_kind": "summarise"},
}
WORKFLOWS: dict[str, Any] = {
    "two": {"agents": AGENTS, "steps": [{"id": "first", "agents": ["writer"]}, {"id": "second", "agents": ["writer"]}]},
    "three": {"agents": AGENTS, "steps": [{"id": "s1", "agents": ["writer"]}, {"id": "s2", "agents": ["writer"]},
                                          {"id": "s3", "agents": ["writer"]}]},
    "loop": {"agents": AGENTS, "steps": [{"id": "loop", "type": "test.loop", "agents": ["writer"],
                                          "options": {"n": 4}}]},
    "fanout": {"agents": AGENTS, "steps": [{"id": "fan", "type": "test.fanout", "agents": ["a", "b", "c"]}]},
    "gated": {"agents": AGENTS, "steps": [{"id": "plan", "agents": ["writer"]},
                                          {"id": "change", "type": "test.gate", "agents": ["coder"]},
                                          {"id": "after", "agents": ["writer"]}]},
    "gated_fast": {"agents": AGENTS, "steps": [{"id": "change", "type": "test.gate", "agents": ["coder"],
                                               "options": {"timeout_s": 1}}]},
    "agent_budget": {"agents": AGENTS, "agent_budgets": {"b": {"tokens": 1}},
                     "steps": [{"id": "fan", "type": "test.fanout", "agents": ["a", "b", "c"]}]},
}


def write_json(h: Home, name: str, data: Any) -> None:
    (h.dir / name).write_text(json.dumps(data), encoding="utf-8")


def script(h: Home, **data: Any) -> None:
    write_json(h, "test-provider.json", {"delay_s": 0.0, **data})


def sends(h: Home) -> list[dict[str, Any]]:
    """Every request the scripted provider answered (and so 'billed'), across engine restarts."""
    p = h.dir / "test-provider.log"
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def start(h: Home, tenant: str, workflow: str, feature: str = "add a --json flag", *,
          as_user: str | None = None, **kw: Any) -> dict[str, Any]:
    status, body = h.raw("POST", "/v1/runs", {"workflow": workflow, "feature": feature, **kw}, tenant=tenant,
                         as_user=as_user)
    assert status == 201, body
    return dict(body)


def show(h: Home, tenant: str, run_id: str) -> dict[str, Any]:
    status, body = h.raw("GET", f"/v1/runs/{run_id}", tenant=tenant)
    assert status == 200, body
    return dict(body)


def wait(h: Home, tenant: str, run_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = show(h, tenant, run_id)
        return r if r["state"] in states else None

    return dict(poll(check, timeout=timeout))


def run_audit(h: Home, tenant: str, run_id: str) -> list[dict[str, Any]]:
    return [e for e in h.audit(tenant) if e["resource"] == f"run:{run_id}"]


@contextmanager
def runs_home(**env: str) -> Iterator[Home]:
    """A private home with the test workflows and a fast scripted provider, engine started (MUSUBI_TEST_RUNS=1).

    ``env`` adds environment variables for the engine (e.g. ``MUSUBI_TEST_CONNECTORS``); the
    runs fixtures (tests/runs/conftest.py) and the notification tests share it.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSUBI_TEST_RUNS", "1")
        for k, v in env.items():
            mp.setenv(k, v)
        h = Home()
        write_json(h, "test-workflows.json", WORKFLOWS)
        write_json(h, "test-provider.json", {"delay_s": 0.0})
        try:
            h.start()
            yield h
        finally:
            h.cleanup()
