"""agent, sequential and parallel: control flow, error policies, joins, priorities, budgets."""

from __future__ import annotations

import asyncio

import pytest

from core.orchestration.contracts import ProviderError, RunStop
from tests.orchestration.helpers import a, problems, run
from tests.orchestration.scripted import Say, ctx

DEV, REV, TEST = "software-developer", "code-reviewer", "test-engineer"


def _perr() -> ProviderError:
    return ProviderError("upstream", "HTTP 500 from the API", provider="fake", status=500)


def test_agent_one_call_in_the_estimators_layout() -> None:
    c = ctx({DEV: ["--- a/x\n+++ b/x\n"]}, feature="add login")
    r = run(a(DEV, "impl"), c, "TASK-001")
    assert r.status == "done" and r.output.startswith("--- a/x")
    assert r.artefacts[0].kind == "diff" and r.artefacts[0].name == "impl"
    (call,) = c.record.calls
    assert call.path == "root" and call.label == "call"
    assert [m.role for m in call.messages] == ["system", "user", "user"]
    assert call.material == "TASK-001" and "add login" in call.instructions


def test_sequential_output_feeds_the_next() -> None:
    c = ctx({"requirements-analyst": ["REQS"], "system-architect": ["DESIGN"], "task-planner": ["TASKS"]})
    r = run({"type": "sequential", "steps": [a("requirements-analyst", "r"), a("system-architect", "d"),
                                              a("task-planner", "t")]}, c, "feature text")
    assert r.output == "TASKS" and [x.kind for x in r.artefacts] == ["requirements", "design", "tasks"]
    assert [x.material for x in c.record.calls] == ["feature text", "REQS", "DESIGN"]
    assert c.record.paths() == ["root/r", "root/d", "root/t"]


def test_sequential_stop_on_error_names_the_step() -> None:
    c = ctx({DEV: [Say(error=_perr())], REV: ["never"]})
    r = run({"type": "sequential", "steps": [a(DEV), a(REV)]}, c)
    assert r.status == "failed" and "step software-developer failed" in (r.reason or "")
    assert "HTTP 500" in (r.reason or "") and c.record.agents_called() == [DEV]


def test_sequential_continue_passes_the_last_good_output() -> None:
    c = ctx({REV: ["R1"], DEV: [Say(error=_perr())], TEST: ["T"]})
    r = run({"type": "sequential", "on_error": "continue", "steps": [a(REV), a(DEV), a(TEST)]}, c, "in")
    assert r.status == "done" and r.output == "T" and "software-developer failed" in (r.reason or "")
    assert c.record.calls[-1].material == "R1"


def test_sequential_retry_runs_new_sub_steps_then_succeeds() -> None:
    c = ctx({DEV: [Say(error=_perr()), Say(error=_perr()), "OK"]})
    r = run({"type": "sequential", "on_error": "retry", "retries": 2, "steps": [a(DEV, "impl")]}, c)
    assert r.status == "done" and r.output == "OK"
    assert c.record.paths() == ["root/impl", "root/impl~retry1", "root/impl~retry2"]


def test_sequential_retry_gives_up_after_n() -> None:
    c = ctx({DEV: [Say(error=_perr())] * 2})
    r = run({"type": "sequential", "on_error": "retry", "retries": 1, "steps": [a(DEV)]}, c)
    assert r.status == "failed" and "after 2 attempts" in (r.reason or "")


def test_sequential_never_retries_a_run_stop() -> None:
    c = ctx({DEV: [Say(error=RunStop("quota hit", code="quota"))]})
    with pytest.raises(RunStop) as e:
        run({"type": "sequential", "on_error": "retry", "retries": 3, "steps": [a(DEV)]}, c)
    assert e.value.code == "quota" and len(c.record.calls) == 1


def test_sequential_stops_on_a_rejected_child_even_with_continue() -> None:
    from core.orchestration.contracts import ApprovalDecision

    c = ctx({DEV: ["diff"], REV: ["never"]}, approvals=[ApprovalDecision("reject", "alice", "no")])
    r = run({"type": "sequential", "on_error": "continue", "steps": [
        {"id": "gate", "type": "approval", "steps": [a(DEV)]}, a(REV)]}, c)
    assert r.status == "rejected" and "alice" in (r.reason or "") and REV not in c.record.agents_called()


# -- parallel -------------------------------------------------------------------------------


def _par(**opts: object) -> dict[str, object]:
    return {"type": "parallel", "steps": [a(REV, "b1"), a(TEST, "b2"), a(DEV, "b3")], **opts}


def test_parallel_all_joins_every_branch_and_preflights_first() -> None:
    c = ctx({REV: ["R"], TEST: ["T"], DEV: ["D"]})
    r = run(_par(), c)
    assert r.status == "done" and r.output == "## b1\nR\n\n## b2\nT\n\n## b3\nD"
    assert c.record.preflights == [("root", (REV, TEST, DEV))]
    assert sorted(c.record.paths()) == ["root/b1", "root/b2", "root/b3"]


def test_parallel_budget_refuses_the_fan_out_before_any_call() -> None:
    c = ctx({REV: ["R"], TEST: ["T"], DEV: ["D"]}, budget_calls=2)
    with pytest.raises(RunStop) as e:
        run(_par(), c)
    assert e.value.code == "budget" and c.record.calls == []


def test_parallel_max_concurrency_and_priority_order() -> None:
    c = ctx({REV: [Say("R", ticks=3)], TEST: [Say("T", ticks=3)], DEV: [Say("D", ticks=3)]})
    r = run(_par(max_concurrency=1, priority={"b3": 5, "b2": 1}), c)
    assert r.status == "done" and c.record.max_active == 1
    assert c.record.agents_called() == [DEV, TEST, REV]


def test_parallel_concurrency_really_overlaps() -> None:
    c = ctx({REV: [Say("R", ticks=3)], TEST: [Say("T", ticks=3)], DEV: [Say("D", ticks=3)]})
    run(_par(max_concurrency=2), c)
    assert c.record.max_active == 2


def test_parallel_dependencies_wait_and_get_outputs() -> None:
    c = ctx({REV: ["R"], TEST: ["T"], DEV: ["D"]})
    r = run(_par(after={"b1": ["b3"], "b2": ["b1", "b3"]}), c)
    assert r.status == "done" and c.record.agents_called() == [DEV, REV, TEST]
    last = c.record.calls[-1].material
    assert "## Output of b1\nR" in last and "## Output of b3\nD" in last


def test_parallel_failed_dependency_skips_the_dependent() -> None:
    c = ctx({REV: ["R"], DEV: [Say(error=_perr())], TEST: ["never"]})
    r = run(_par(join="majority", after={"b2": ["b3"]}), c)
    assert r.status == "failed" and "skipped: b3 did not succeed" in (r.reason or "")
    assert TEST not in c.record.agents_called()


def test_parallel_first_cancels_the_rest() -> None:
    c = ctx({REV: [Say("slow", ticks=50)], TEST: [Say("fast", ticks=1)], DEV: [Say("slow", ticks=50)]})
    r = run(_par(join="first"), c)
    assert r.status == "done" and r.output == "fast" and "b2" in (r.reason or "")
    assert c.record.active == 0  # the cancelled calls were unwound


def test_parallel_majority_and_quorum() -> None:
    c = ctx({REV: ["R"], TEST: [Say(error=_perr())], DEV: ["D"]})
    assert run(_par(join="majority"), c).status == "done"
    c = ctx({REV: ["R"], TEST: [Say(error=_perr())], DEV: [Say(error=_perr())]})
    r = run(_par(join="quorum", quorum=2), c)
    assert r.status == "failed"
    assert "join 'quorum' not reached: 1 of 3 branches succeeded, 2 needed" in (r.reason or "")


def test_parallel_quorum_met_early_cancels_the_slow_branch() -> None:
    c = ctx({REV: [Say("R", ticks=1)], TEST: [Say("T", ticks=1)], DEV: [Say("never", ticks=100)]})
    r = run(_par(join="quorum", quorum=2), c)
    assert r.status == "done" and "cancelled once the join was met: b3" in (r.reason or "")


def test_parallel_run_stop_in_a_branch_cancels_the_others() -> None:
    c = ctx({REV: [Say(error=RunStop("budget", code="budget"), ticks=1)], TEST: [Say("T", ticks=50)],
             DEV: [Say("D", ticks=50)]})
    with pytest.raises(RunStop):
        run(_par(), c)
    assert c.record.active == 0


def test_parallel_options_are_validated() -> None:
    assert any("quorum from 1 to 3" in p for p in problems(_par(join="quorum")))
    assert any("not one of this step's branches" in p for p in problems(_par(priority={"zz": 1})))
    assert any("cycle" in p for p in problems(_par(after={"b1": ["b2"], "b2": ["b1"]})))
    assert any("unknown option for a parallel step" in p for p in problems(_par(joins="all")))
    assert any("max_concurrency" in p for p in problems(_par(max_concurrency=0)))


def test_patterns_need_no_event_loop_tricks() -> None:
    # every pattern is a coroutine function taking (step, input, ctx)
    from core.orchestration.contracts import PATTERNS

    assert all(asyncio.iscoroutinefunction(p) for p in PATTERNS.values()) and len(PATTERNS) == 9


def test_parallel_first_with_every_branch_failing() -> None:
    c = ctx({REV: [Say(error=_perr())], TEST: [Say(error=_perr())], DEV: [Say(error=_perr())]})
    r = run(_par(join="first"), c)
    assert r.status == "failed" and "join 'first' not reached: 0 of 3 branches succeeded, 1 needed" in (r.reason or "")


def test_workflow_level_on_error_drives_the_root_sequence(tmp_path: object) -> None:
    from pathlib import Path

    from core.orchestration.patterns import run_step
    from core.orchestration.spec import load_workflow

    d = Path(str(tmp_path))
    (d / "workflows.toml").write_text('[workflow.w]\non_error = "retry"\nretries = 2\n'
                                      'steps = [ { id = "r", agent = "code-reviewer" } ]\n')
    w = load_workflow("w", user_dir=d)
    assert w.root.options == {"on_error": "retry", "retries": 2}
    c = ctx({REV: [Say(error=_perr()), "ok"]})
    r = asyncio.run(run_step(w.root, "in", c))
    assert r.output == "ok" and c.record.paths() == ["root/r", "root/r~retry1"]


def test_parallel_first_among_branches_finishing_together_is_the_first_in_the_file() -> None:
    # recorded answers on a resume come back at once: the winner must not depend on task scheduling
    for prio in ({}, {"b3": 9}):
        c = ctx({REV: ["R"], TEST: ["T"], DEV: ["D"]})
        assert run(_par(join="first", priority=prio), c).output == "R"
