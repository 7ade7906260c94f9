"""group_chat, nested and auto: rounds and consensus, delegation depth, scoring."""

from __future__ import annotations

import pytest

from core.orchestration.contracts import RunStop
from tests.orchestration.helpers import problems, run
from tests.orchestration.scripted import ctx

ARCH, REV, TEST, DEV, PLAN = "system-architect", "code-reviewer", "test-engineer", "software-developer", "task-planner"

# -- group chat -----------------------------------------------------------------------------


def _chat(**opts: object) -> dict[str, object]:
    return {"id": "chat", "type": "group_chat", "agents": [ARCH, REV], **opts}


def test_group_chat_round_robin_until_unanimous() -> None:
    c = ctx({ARCH: ["proposal\nVERDICT: AGREE", "v2\nVERDICT: AGREE"],
             REV: ["flaw\nVERDICT: DISAGREE", "ok now\nVERDICT: APPROVE"]})
    r = run(_chat(consensus="unanimous"), c, "TOPIC")
    assert r.status == "done" and "unanimous agreement in round 2" in (r.reason or "")
    assert c.record.paths() == ["root/round-1"] * 2 + ["root/round-2"] * 2
    assert c.record.preflights == [("root/round-1", (ARCH, REV)), ("root/round-2", (ARCH, REV))]
    assert "## system-architect (round 1)\nproposal" in c.record.calls[1].material  # each sees the discussion
    assert "VERDICT" not in r.output


def test_group_chat_no_consensus_stops_at_the_cap_with_the_votes() -> None:
    c = ctx({ARCH: ["a\nVERDICT: AGREE"] * 2, REV: ["b\nVERDICT: DISAGREE"] * 2})
    r = run(_chat(consensus="unanimous", max_rounds=2), c)
    assert r.status == "stopped"
    assert "no consensus (unanimous) after 2 rounds" in (r.reason or "")
    assert "system-architect agrees, code-reviewer disagrees" in (r.reason or "")


def test_group_chat_majority_and_none() -> None:
    c = ctx({ARCH: ["x\nVERDICT: AGREE"], REV: ["y\nVERDICT: AGREE"], TEST: ["z\nVERDICT: DISAGREE"]})
    r = run(_chat(agents=[ARCH, REV, TEST]), c)
    assert r.status == "done" and len(c.record.calls) == 3
    c = ctx({ARCH: ["x"] * 2, REV: ["y"] * 2})
    r = run(_chat(consensus="none", max_rounds=2), c)
    assert r.status == "done" and len(c.record.calls) == 4 and "2 rounds held" in (r.reason or "")


def test_group_chat_moderated_picks_speakers_and_closes() -> None:
    c = ctx({TEST: ["NEXT: code-reviewer", "NEXT: system-architect", "DECISION: DONE"],
             REV: ["r1\nVERDICT: DISAGREE"], ARCH: ["a1\nVERDICT: AGREE"]})
    r = run(_chat(mode="moderated", moderator=TEST, consensus="moderator", max_rounds=5), c)
    assert r.status == "done" and "moderator closed the discussion in round 3" in (r.reason or "")
    assert c.record.agents_called() == [TEST, REV, TEST, ARCH, TEST]


def test_group_chat_moderator_naming_an_outsider_fails() -> None:
    r = run(_chat(mode="moderated", moderator=TEST), ctx({TEST: ["NEXT: task-planner"]}))
    assert r.status == "failed" and "named 'task-planner'" in (r.reason or "")


def test_group_chat_round_robin_with_moderator_consensus() -> None:
    c = ctx({ARCH: ["a"] * 2, REV: ["b"] * 2, TEST: ["DECISION: CONTINUE", "DECISION: DONE"]})
    r = run(_chat(moderator=TEST, consensus="moderator", max_rounds=3), c)
    assert r.status == "done" and "round 2" in (r.reason or "")
    assert c.record.preflights[0] == ("root/round-1", (ARCH, REV, TEST))


def test_group_chat_budget_stops_before_a_round() -> None:
    c = ctx({ARCH: ["a"] * 3, REV: ["b"] * 3}, budget_calls=3)
    with pytest.raises(RunStop) as e:
        run(_chat(consensus="unanimous", max_rounds=3), c)
    assert e.value.code == "budget"
    assert len(c.record.calls) == 2  # round 2 was refused whole by its preflight


def test_group_chat_validation() -> None:
    assert any("needs a moderator" in p for p in problems(_chat(mode="moderated")))
    assert any("no agent 'nobody'" in p for p in problems(_chat(moderator="nobody")))
    assert any("max_rounds" in p for p in problems(_chat(max_rounds=0)))
    assert any("at least two agents" in p for p in problems(_chat(agents=[ARCH])))


# -- nested ---------------------------------------------------------------------------------


def _nested(**opts: object) -> dict[str, object]:
    return {"id": "n", "type": "nested", "agent": PLAN, "agents": [DEV, TEST], **opts}


def test_nested_delegates_and_composes() -> None:
    c = ctx({PLAN: ["DELEGATE software-developer: write f\nDELEGATE test-engineer: test f", "FINAL"],
             DEV: ["diff"], TEST: ["tests"]})
    r = run(_nested(), c, "build f")
    assert r.status == "done" and r.output == "FINAL" and r.artefacts[0].kind == "tasks"
    assert c.record.paths() == ["root", "root/d1-software-developer", "root/d2-test-engineer", "root"]
    assert [x.label for x in c.record.calls] == ["call", "call", "call", "compose"]
    assert "## software-developer answered: write f\ndiff" in c.record.calls[-1].material


def test_nested_depth_limit_stops_with_the_chain() -> None:
    c = ctx({PLAN: ["DELEGATE software-developer: x"], DEV: ["DELEGATE test-engineer: y"]})
    r = run(_nested(max_depth=1), c)
    assert r.status == "stopped"
    assert r.reason == ("nested depth limit reached: max_depth = 1 (task-planner -> software-developer) and "
                        "software-developer asked to delegate to test-engineer")
    assert "cannot delegate" in c.record.calls[1].instructions


def test_nested_two_levels_within_the_depth() -> None:
    c = ctx({PLAN: ["DELEGATE software-developer: x", "P"], DEV: ["DELEGATE test-engineer: y", "D"], TEST: ["T"]})
    r = run(_nested(max_depth=2), c)
    assert r.output == "P" and "root/d1-software-developer/d1-test-engineer" in c.record.paths()


def test_nested_limits_on_fan_out_outsiders_and_re_delegation() -> None:
    r = run(_nested(max_delegations=1), ctx({PLAN: ["DELEGATE software-developer: a\nDELEGATE test-engineer: b"]}))
    assert r.status == "stopped" and "max_delegations = 1" in (r.reason or "")
    r = run(_nested(), ctx({PLAN: ["DELEGATE code-reviewer: a"]}))
    assert r.status == "stopped" and "'code-reviewer', who is not allowed" in (r.reason or "")
    r = run(_nested(), ctx({PLAN: ["DELEGATE software-developer: a", "DELEGATE test-engineer: b"], DEV: ["d"]}))
    assert r.status == "stopped" and "delegate again" in (r.reason or "")


def test_nested_needs_the_delegating_agent() -> None:
    assert any("needs the delegating agent" in p for p in problems({"type": "nested", "agents": [DEV]}))


# -- auto -----------------------------------------------------------------------------------


def test_auto_picks_by_keywords_and_task_kind() -> None:
    c = ctx({REV: ["review"]})
    r = run({"id": "x", "type": "auto", "agents": [DEV, REV, TEST]}, c, "please review this pull request")
    assert r.output == "review" and c.record.agents_called() == [REV]
    assert any(n.startswith("auto picked code-reviewer") for n in c.record.notes)
    c = ctx({TEST: ["t"]})
    run({"id": "x", "type": "auto", "agents": [DEV, REV, TEST], "task": "test"}, c, "hello")
    assert c.record.agents_called() == [TEST]


def test_auto_defaults_to_every_agent() -> None:
    c = ctx({"system-architect": ["d"]})
    run({"id": "x", "type": "auto"}, c, "we need an architecture with C4 diagrams and an ADR")
    assert c.record.agents_called() == [ARCH]


def test_auto_below_min_score_uses_fallback_or_stops() -> None:
    r = run({"id": "x", "type": "auto", "agents": [DEV, REV]}, ctx({}), "hello there")
    assert r.status == "stopped" and "no agent scored above min_score 0" in (r.reason or "")
    c = ctx({DEV: ["d"]})
    r = run({"id": "x", "type": "auto", "agents": [DEV, REV], "fallback": DEV, "min_score": 5}, c, "review")
    assert r.output == "d" and c.record.agents_called() == [DEV]


def test_auto_validation() -> None:
    assert any("unknown task kind 'deploy'" in p for p in problems({"type": "auto", "task": "deploy"}))
    assert any("no agent 'ghost'" in p for p in problems({"type": "auto", "fallback": "ghost"}))


def test_group_chat_moderated_with_a_vote_rule() -> None:
    c = ctx({TEST: ["NEXT: system-architect", "NEXT: code-reviewer"],
             ARCH: ["plan\nVERDICT: AGREE"], REV: ["fine\nVERDICT: AGREE"]})
    r = run(_chat(mode="moderated", moderator=TEST, consensus="unanimous", max_rounds=4), c)
    assert r.status == "done" and "unanimous agreement in round 2" in (r.reason or "")
    assert c.record.preflights == [("root/round-1", (TEST,)), ("root/round-1", (ARCH,)),
                                   ("root/round-2", (TEST,)), ("root/round-2", (REV,))]
