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


def _columns(table: str) -> list[str]:
    """The columns of ``table`` as migration 006 creates them (in order)."""
    import re
    from pathlib import Path

    import core.storage

    sql = (Path(core.storage.__file__).parent / "migrations" / "006_runs.sql").read_text()
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
    assert body is not None, table
    cols = [ln.strip().split()[0] for ln in body.group(1).splitlines() if ln.strip() and not ln.strip().startswith(
        ("--", "PRIMARY"))]
    return cols


def test_every_record_is_exactly_one_row_of_its_table_and_reads_back_equal() -> None:
    from core.orchestration.records import ApprovalRecord, ArtefactRecord, StepRecord

    run = RunRecord("r-1", "t", None, "wf", "f", "m", "failed", "u", NOW, NOW, 200, 25, 60, budget_tokens=9,
                    reason="x" * 5000, attempts=2, input_tokens=3)
    step = StepRecord("r-1", "2/1", "2", 1, "t", "agent", "a", "done", output="o", reason="why")
    call = _call("x", 1, "a", "ok", tokens=5, cost=7)
    call.error = "e" * 3000
    art = ArtefactRecord("a-1", "r-1", "2", "diff", "n", "c", "h", "proposed", NOW, detail="d")
    gate = ApprovalRecord("r-1", "g", "2", "a-1", "h", "c", "pending", NOW, None, comment="k")
    for rec, table in ((run, "runs"), (step, "run_steps"), (call, "run_calls"), (art, "run_artefacts"),
                       (gate, "run_approvals")):
        row = rec.row()
        assert sorted(row) == sorted(_columns(table)), table
        back = type(rec).from_row(row)
        assert back.row() == row, table
    assert run.row()["project"] == "" and RunRecord.from_row(run.row()).project is None
    assert len(run.row()["reason"]) == 2000 and len(call.row()["error"]) == 2000  # long texts are cut
    assert RunRecord.from_row({**run.row(), "attempts": 2.0}).attempts == 2  # ints read back as int
