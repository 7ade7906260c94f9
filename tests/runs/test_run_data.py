"""RunData's indexes (by step and label, by agent) agree with its calls, however they arrive."""

from __future__ import annotations

from datetime import datetime

from core.orchestration.records import CallRecord, RunData, RunRecord

NOW = datetime(2026, 12, 6, 8, 0)


def _run() -> RunData:
    return RunData(RunRecord("r-1", "t", None, "wf", "f", None, "running", "u", NOW, NOW, 200, 25, 60))


def _call(label: str, attempt: int, agent: str, outcome: str, tokens: int = 0, cost: int = 0) -> CallRecord:
    return CallRecord(f"r-1:1:{label}:{attempt}", "r-1", "t", "1", label, attempt, agent, "m", "p", outcome, NOW,
                      input_tokens=tokens, output_tokens=1 if tokens else 0, cost_micros=cost)


def test_attempts_completed_and_agent_usage_follow_the_calls() -> None:
    d = _run()
    d.add_call(_call("turn1", 1, "a", "interrupted"))
    ok = _call("turn1", 2, "a", "ok", 10, 5)
    d.add_call(ok)
    d.add_call(_call("turn2", 1, "b", "ok", 20, 7))
    assert d.attempts("1", "turn1") == 2 and d.attempts("1", "turn3") == 0
    assert d.completed("1", "turn1") is ok and d.completed("1", "turn3") is None
    assert d.agent_spent("a") == (11, 5) and d.agent_spent("b") == (21, 7) and d.agent_spent("c") == (0, 0)
    # A call that completes while held is counted once; the same row read again is not counted twice.
    live = _call("turn3", 1, "a", "sent")
    d.add_call(live)
    live.outcome, live.input_tokens, live.output_tokens, live.cost_micros = "ok", 4, 1, 2
    d.call_ok(live)
    d.add_call(_call("turn3", 1, "a", "ok", 4, 2))
    assert d.agent_spent("a") == (16, 7) and d.attempts("1", "turn3") == 1
    d.clear_calls()
    assert d.attempts("1", "turn1") == 0 and d.agent_spent("a") == (0, 0) and not d.calls
