"""Building validated step trees for pattern tests."""

from __future__ import annotations

import asyncio
from typing import Any

from core.models.kinds import TASK_KINDS
from core.orchestration.contracts import StepResult, StepSpec
from core.orchestration.patterns import run_step
from core.orchestration.spec import load_catalog
from core.orchestration.steps import StepChecker
from tests.orchestration.scripted import Scripted

AGENTS = load_catalog().agents


def step(raw: dict[str, Any]) -> StepSpec:
    """A StepSpec validated exactly as a workflow file's step is (options defaulted)."""
    checker = StepChecker(AGENTS, TASK_KINDS)
    spec = checker.step(raw, ("test",), 0)
    assert not checker.problems, checker.problems
    assert spec is not None
    return spec


def problems(raw: dict[str, Any]) -> list[str]:
    checker = StepChecker(AGENTS, TASK_KINDS)
    checker.step(raw, ("test",), 0)
    return [f"{'.'.join(map(str, p.loc))}: {p.message}. {p.fix}" for p in checker.problems]


def run(raw: dict[str, Any], ctx: Scripted, text: str = "input") -> StepResult:
    return asyncio.run(run_step(step(raw), text, ctx))


def a(agent: str, sid: str | None = None) -> dict[str, Any]:
    return {"id": sid or agent, "agent": agent}
