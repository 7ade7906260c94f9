"""A workflow that can be estimated is exactly the workflow that runs: the planned calls are the run's calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.orchestration.contracts import ApprovalDecision, ChatMessage
from core.orchestration.patterns import run_step
from core.orchestration.spec import load_catalog, plan, step_at
from tests.orchestration.scripted import Say, Scripted

CAT = load_catalog()


def _answer(agent: str, _path: str, _messages: Sequence[ChatMessage]) -> str | Say:
    if agent == "triage":
        return '{"stage": "requirements", "confidence": 0.9, "reason": "new need"}'
    return f"answer of {agent}\nVERDICT: DISAGREE"  # a chat never agrees: it runs to its cap, as planned


@pytest.mark.parametrize("name", sorted(CAT.workflows))
def test_each_shipped_workflow_makes_the_planned_calls(name: str) -> None:
    w = CAT.workflows[name]
    ctx = Scripted(_answer, approvals=[ApprovalDecision("approve", "alice")] * 5, agents=CAT.agents,
                   feature="a login page")
    result = asyncio.run(run_step(w.root, "a login page", ctx))
    called = sorted((c.path, c.agent) for c in ctx.record.calls)
    planned = sorted((f"root/{c.path}", c.agent) for c in plan(w, CAT.agents))
    assert called == planned
    for c in ctx.record.calls:  # every call belongs to a step that names its agent
        owner = step_at(w, c.path.removeprefix("root"))
        assert c.agent in owner.agents, (c.path, owner.id)
    # a workflow ending in a chat that never agrees stops at its cap with the reason; every other one is done
    assert result.status == ("stopped" if name == "design-review" else "done"), result.reason


def test_step_at_maps_retries_revisions_and_sub_steps() -> None:
    w = CAT.workflows["full"]
    assert step_at(w, "change/implementation~rev2").id == "implementation"
    assert step_at(w, "/spec/spec/design~retry1").agents == ("system-architect",)
    assert step_at(w, "review").id == "review" and step_at(w, "").id == "root"
    chat = CAT.workflows["design-review"]
    assert step_at(chat, "discussion/round-3").type == "group_chat"
