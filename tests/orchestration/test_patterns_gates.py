"""handoff, triage and approval: transfers and their limits, classification thresholds, human gates."""

from __future__ import annotations

import pytest

from core.orchestration.contracts import ApprovalDecision, RunStop
from tests.orchestration.helpers import a, problems, run
from tests.orchestration.scripted import ctx

DEV, REV, TEST, ARCH = "software-developer", "code-reviewer", "test-engineer", "system-architect"

# -- handoff --------------------------------------------------------------------------------


def _handoff(**opts: object) -> dict[str, object]:
    return {"id": "h", "type": "handoff", "agents": [DEV, REV, TEST], **opts}


def test_handoff_transfers_and_ends_on_a_plain_answer() -> None:
    c = ctx({DEV: ["partial work\nHANDOFF: code-reviewer"], REV: ["final review"]})
    r = run(_handoff(), c, "the task")
    assert r.status == "done" and r.output == "final review" and r.artefacts[0].kind == "review"
    assert c.record.paths() == ["root/turn-1", "root/turn-2"]
    assert "code-reviewer" in c.record.calls[0].instructions  # the others are offered
    second = c.record.calls[1].material
    assert "the task" in second and "partial work" in second and "HANDOFF" not in second  # history filter


def test_handoff_input_filters_last_and_original() -> None:
    c = ctx({DEV: ["mine\nHANDOFF: test-engineer"], TEST: ["done"]})
    run(_handoff(input_filter="last"), c, "ORIGINAL")
    assert "mine" in c.record.calls[1].material and "ORIGINAL" not in c.record.calls[1].material
    c = ctx({DEV: ["mine\nHANDOFF: test-engineer"], TEST: ["done"]})
    run(_handoff(filters={TEST: "original"}), c, "ORIGINAL")
    assert c.record.calls[1].material == "ORIGINAL"


def test_handoff_loop_stops_at_the_limit_naming_the_chain() -> None:
    c = ctx({DEV: ["x\nHANDOFF: code-reviewer"] * 5, REV: ["y\nHANDOFF: software-developer"] * 5})
    r = run(_handoff(max_handoffs=3), c)
    assert r.status == "stopped"
    assert ("handoff limit reached: 3 handoffs (software-developer -> code-reviewer -> software-developer -> "
            "code-reviewer) and code-reviewer wanted to hand to software-developer") in (r.reason or "")
    assert len(c.record.calls) == 4


def test_handoff_to_an_unlisted_agent_fails() -> None:
    c = ctx({DEV: ["HANDOFF: task-planner"]})
    r = run(_handoff(), c)
    assert r.status == "failed" and "'task-planner', which is not one of this step's agents" in (r.reason or "")


def test_handoff_needs_two_agents_and_known_filters() -> None:
    assert any("at least two agents" in p for p in problems({"type": "handoff", "agents": [DEV]}))
    assert any("not one of this step's agents" in p for p in problems(_handoff(filters={ARCH: "last"})))


# -- triage ---------------------------------------------------------------------------------

ROUTES = {"design": "d", "review": "r"}


def _triage(**opts: object) -> dict[str, object]:
    return {"id": "t", "type": "triage", "routes": ROUTES, "steps": [a(ARCH, "d"), a(REV, "r")], **opts}


def test_triage_by_keyword_routes_to_the_stage() -> None:
    c = ctx({REV: ["looks fine"]})
    r = run(_triage(), c, "Please review this pull request and give feedback")
    assert r.status == "done" and r.output == "looks fine" and c.record.paths() == ["root/r"]
    assert any("triage: review at confidence 1.00" in n for n in c.record.notes)


def test_triage_below_threshold_stops_clearly() -> None:
    c = ctx({})
    r = run(_triage(threshold=0.9), c, "review the design of the component")
    assert r.status == "stopped" and c.record.calls == []
    assert "below the threshold 0.90" in (r.reason or "") and "set fallback" in (r.reason or "")


def test_triage_tie_is_never_confident_and_uses_the_fallback() -> None:
    c = ctx({ARCH: ["design answer"]})
    r = run(_triage(threshold=0.1, fallback="d"), c, "design review")
    assert r.output == "design answer" and any("a tie between" in n for n in c.record.notes)


def test_triage_no_keyword_stops() -> None:
    r = run(_triage(), ctx({}), "hello there")
    assert r.status == "stopped" and "no stage keyword" in (r.reason or "")


def test_triage_stage_without_route_uses_fallback_or_stops() -> None:
    r = run(_triage(), ctx({}), "write unit tests and improve coverage")
    assert r.status == "stopped" and "stage 'test' has no route" in (r.reason or "")


def test_triage_extra_keywords_count() -> None:
    c = ctx({ARCH: ["d"]})
    run(_triage(keywords={"design": ["blueprint"]}), c, "a blueprint please")
    assert c.record.paths() == ["root/d"]


def test_triage_by_llm_uses_the_verdict_and_its_confidence() -> None:
    c = ctx({"triage": ['{"stage": "design", "confidence": 0.8, "reason": "no design yet"}'], ARCH: ["D"]})
    r = run(_triage(method="llm", agent="triage"), c, "anything")
    assert r.output == "D" and [x.label for x in c.record.calls] == ["classify", "call"]
    c = ctx({"triage": ['{"stage": "design", "confidence": 0.3}']})
    r = run(_triage(method="llm", agent="triage"), c, "anything")
    assert r.status == "stopped" and "confidence 0.30" in (r.reason or "")


@pytest.mark.parametrize("answer", ["not json", '{"stage": "deploy", "confidence": 0.99}',
                                    '{"stage": "design", "confidence": 7}', '{"stage": "design"}'])
def test_triage_unreadable_llm_answer_is_zero_confidence(answer: str) -> None:
    r = run(_triage(method="llm", agent="triage"), ctx({"triage": [answer]}), "x")
    assert r.status == "stopped" and "confidence 0.00" in (r.reason or "")


def test_triage_options_are_validated() -> None:
    assert any("unknown stage 'deploy'" in p for p in problems(_triage(routes={"deploy": "d"})))
    assert any("'zz', which is not a child step" in p for p in problems(_triage(routes={"design": "zz"})))
    assert any("needs the classifying agent" in p for p in problems(_triage(method="llm")))
    assert any("fallback 'q' is not a child step" in p for p in problems(_triage(fallback="q")))
    assert any("threshold" in p for p in problems(_triage(threshold=1.5)))


# -- approval -------------------------------------------------------------------------------


def _gate(**opts: object) -> dict[str, object]:
    return {"id": "g", "type": "approval", "gate": "apply-diff", "steps": [a(DEV, "impl")], **opts}


def test_approval_approve_passes_the_output_on() -> None:
    c = ctx({DEV: ["DIFF"]}, approvals=[ApprovalDecision("approve", "alice")])
    r = run(_gate(timeout_s=60), c)
    assert r.status == "done" and r.output == "DIFF" and "approved by alice" in (r.reason or "")
    ((path, gate, art, timeout),) = c.record.gates
    assert (path, gate, art.kind, art.content, timeout) == ("root", "apply-diff", "diff", "DIFF", 60)


def test_approval_reject_is_a_rejection_with_who_and_why() -> None:
    c = ctx({DEV: ["DIFF"]}, approvals=[ApprovalDecision("reject", "bob", "touches secrets")])
    r = run(_gate(), c)
    assert r.status == "rejected" and r.reason == "rejected by bob at gate apply-diff: touches secrets"


def test_approval_request_changes_reruns_the_producer_with_the_comment() -> None:
    c = ctx({DEV: ["DIFF1", "DIFF2"]}, approvals=[ApprovalDecision("request_changes", "alice", "add a test"),
                                                  ApprovalDecision("approve", "alice")])
    r = run(_gate(), c, "TASK")
    assert r.output == "DIFF2" and r.status == "done"
    assert c.record.paths() == ["root/impl", "root/impl~rev1"]
    assert [g[1] for g in c.record.gates] == ["apply-diff", "apply-diff~rev1"]
    again = c.record.calls[1].material
    assert "TASK" in again and "DIFF1" in again and "add a test" in again


def test_approval_revisions_are_bounded() -> None:
    c = ctx({DEV: ["D1", "D2"]}, approvals=[ApprovalDecision("request_changes", "a", "more")] * 3)
    r = run(_gate(max_revisions=1), c)
    assert r.status == "stopped" and "max_revisions = 1" in (r.reason or "") and len(c.record.calls) == 2


def test_approval_timeout_fails_closed() -> None:
    c = ctx({DEV: ["DIFF"]}, approvals=[])  # nobody answers: the context raises gate_timeout
    with pytest.raises(RunStop) as e:
        run(_gate(timeout_s=1), c)
    assert e.value.code == "gate_timeout"


def test_approval_unknown_decision_is_a_rejection() -> None:
    c = ctx({DEV: ["DIFF"]}, approvals=[ApprovalDecision("maybe", "eve")])  # type: ignore[arg-type]
    r = run(_gate(), c)
    assert r.status == "rejected" and "unknown decision 'maybe'" in (r.reason or "")


def test_approval_failed_producer_is_never_put_to_a_human() -> None:
    from core.orchestration.contracts import ProviderError
    from tests.orchestration.scripted import Say

    c = ctx({DEV: [Say(error=ProviderError("upstream", "boom", provider="p"))]},
            approvals=[ApprovalDecision("approve", "a")])
    r = run(_gate(steps=[{"id": "s", "type": "sequential", "steps": [a(DEV)]}]), c)
    assert r.status == "failed" and "boom" in (r.reason or "") and c.record.gates == []


def test_approval_validation() -> None:
    assert any("exactly one step" in p for p in problems(_gate(steps=[a(DEV), a(REV)])))
    assert any("needs child steps" in p for p in problems({"type": "approval"}))
    assert any("timeout_s" in p for p in problems(_gate(timeout_s=0)))
