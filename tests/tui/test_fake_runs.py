"""The fake engine's runs (tests/tui/fake_runs.py) in the real engine's shapes.

The contract test (tests/tui/contract.py) holds the fake's refusals to a real engine's; a real engine
starts no run there (no provider).  Here a real engine with the runs test hook (``MUSUBI_TEST_RUNS=1``,
the scripted provider) runs a workflow to its approval gate, and every answer and ``run.*`` event the
Dashboard reads is checked against the shapes of core/api/runs.py — and the fake's fixed runs and
events against the same shapes and the real run's keys, so a Dashboard test cannot rely on a field
the engine never sends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core.api import runs as rq
from tests.engine.helpers import Home
from tests.engine.test_api_models import _exactly
from tests.runs.helpers import WORKFLOWS, start, wait, write_json
from tests.tui.fake_runs import RUN_B, FakeRuns, event, fixed_runs, state_event, step, summary
from tui.follow import _events

SHAPES: dict[str, Any] = {"run.state": rq.RunEvent, "run.step": rq.StepEvent, "run.output": rq.OutputEvent,
                          "run.call": rq.CallEvent, "run.gate": rq.GateEvent, "run.note": rq.NoteEvent}


def keys(value: Any) -> Any:
    """The key structure of an answer: dict keys (recursively), the first item of lists."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return None


@pytest.fixture(scope="module")
def real() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """A real run waiting at its gate (``gated``: plan, a diff behind a gate, after) and the events it sent."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSUBI_TEST_RUNS", "1")
    h = Home()
    try:
        write_json(h, "test-workflows.json", WORKFLOWS)
        diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
        write_json(h, "test-provider.json", {"delay_s": 0.0, "replies": {"2": [diff]}})
        h.start()
        tenant = h.new_tenant("dash")
        events: list[dict[str, Any]] = []
        client = h.client(tenant=tenant)
        opened = threading.Event()

        def listen() -> None:
            with client.stream("GET", "/v1/events", query={"types": ",".join(rq.EVENT_TYPES)}) as resp:
                opened.set()
                for ev in _events(resp):
                    events.append(ev)
                    if ev.get("type") == "run.gate" or ev.get("type") == "stream.closed":
                        return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert opened.wait(30)
        run = start(h, tenant, "gated")
        shown = wait(h, tenant, run["id"], "waiting", "failed", "stopped")
        assert shown["state"] == "waiting", shown
        t.join(30)
        yield shown, events
    finally:
        h.cleanup()
        mp.undo()


def test_a_real_waiting_run_and_its_events_have_the_documented_shapes(
    real: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    shown, events = real
    _exactly(shown, rq.RunShown)
    assert shown["approvals"] and shown["artefacts"] and shown["pending_gate"]
    kinds = {ev["type"] for ev in events}
    assert {"run.state", "run.step", "run.call", "run.gate"} <= kinds, kinds
    for ev in events:
        if ev["type"] in SHAPES:
            _exactly(ev, SHAPES[ev["type"]])


def test_the_fake_runs_have_the_real_runs_keys(real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    shown, _ = real
    fake = fixed_runs()[RUN_B]  # also waiting at a gate, with a diff
    assert keys(fake) == keys(shown)
    for r in fixed_runs().values():
        _exactly(r, rq.RunShown)
        assert keys(summary(r)) == keys({k: v for k, v in shown.items() if k not in ("steps", "approvals",
                                                                                       "artefacts")})


def test_the_fake_answers_and_events_have_the_documented_shapes() -> None:
    fake = FakeRuns()
    perms = ["runs.start", "runs.cancel", "runs.approve"]
    _exactly(fake.answer("GET", "/v1/runs", None, None, "alice", perms), list[rq.Run])
    _exactly(fake.answer("GET", f"/v1/runs/{RUN_B}/logs", None, None, "alice", perms), rq.RunLogs)
    _exactly(fake.answer("POST", f"/v1/runs/{RUN_B}/approve", {}, None, "alice", perms), rq.RunDecided)
    _exactly(fake.answer("POST", f"/v1/runs/{RUN_B}/apply", {}, None, "alice", perms), rq.RunApplied)
    _exactly(fake.answer("POST", f"/v1/runs/{RUN_B}/cancel", None, None, "alice", perms), rq.Run)
    _exactly(state_event(fixed_runs()[RUN_B]), rq.RunEvent)
    _exactly(event("run.step", RUN_B, step=step("1", "x", "running")), rq.StepEvent)
    _exactly(event("run.output", RUN_B, step="1", agent="a", text="t", offset=0), rq.OutputEvent)
