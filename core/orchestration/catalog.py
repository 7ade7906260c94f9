"""Where a run finds its workflow and agents: one :class:`RunPlan` per run attempt.

The workflows are the data of ``core/models/workflows.toml`` (the estimator prices exactly what
runs): through the spec loader (``core.orchestration.spec.load_catalog``) when it is present, else
straight from the estimator's workflows, each step one ``agent`` step whose agent is its task kind.
The test hook ``MUSUBI_TEST_RUNS=1`` adds workflows from ``$MUSUBI_HOME/test-workflows.json``
(core/orchestration/testkit.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import NotFound
from core.orchestration.contracts import (
    PATTERNS,
    AgentSpec,
    Artefact,
    ChatMessage,
    StepContext,
    StepResult,
    StepSpec,
)


@dataclass(frozen=True)
class Budget:
    tokens: int | None = None
    cost_micros: int | None = None
    turns: int | None = None


@dataclass(frozen=True)
class RunPlan:
    """A workflow ready to run: its top-level steps (run in order), agents, budgets."""

    name: str
    steps: tuple[StepSpec, ...]
    agents: Mapping[str, AgentSpec]
    budget: Budget = Budget()
    agent_budgets: Mapping[str, Budget] = field(default_factory=dict)
    on_error: str = "stop"
    retries: int = 1


PREAMBLE = ("You are one step of a Musubi workflow. The material for the whole run comes first; "
            "your instructions for this step follow it.")


def _from_estimator(name: str) -> RunPlan:
    from core.models.estimate import workflow

    wf = workflow(name)  # NotFound naming the known workflows
    agents: dict[str, AgentSpec] = {}
    steps = []
    for i, s in enumerate(wf.steps, 1):
        agents.setdefault(s.task, AgentSpec(name=s.task, role=s.task, system_prompt=s.prompt, task_kind=s.task,
                                            artefact="diff" if s.task == "implementation" else s.task))
        steps.append(StepSpec(id=f"{s.task}-{i}", type="agent", agents=(s.task,)))
    return RunPlan(name, tuple(steps), agents)


def _from_spec(name: str, project_root: str | None) -> RunPlan | None:
    try:
        from core.orchestration import spec  # type: ignore[attr-defined]
    except ImportError:
        return None
    cat = spec.load_catalog(project_root=project_root)
    wf = cat.workflow(name)
    b = wf.budget

    def budget(x: Any) -> Budget:
        return Budget(x.tokens, x.cost_micros, x.turns)

    return RunPlan(wf.name, tuple(wf.steps), dict(cat.agents), budget(b),
                   {k: budget(v) for k, v in wf.agent_budgets.items()}, wf.on_error, wf.retries)


def load_plan(name: str, project_root: str | None, home: Path | None = None) -> RunPlan:
    """The workflow ``name`` as a plan; a 404 naming the known workflows when there is none."""
    if home is not None:
        from core.orchestration import testkit

        if testkit.enabled():
            plan = testkit.plan(home, name)
            if plan is not None:
                return plan
    plan = _from_spec(name, project_root)
    if plan is not None:
        return plan
    try:
        return _from_estimator(name)
    except NotFound:
        raise


# -- the one pattern the run service needs even before the pattern library is there -----------


async def agent_step(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """One agent call: the preamble, the material (feature and the previous step's output), its instructions."""
    name = step.agents[0]
    a = ctx.agent(name)
    material = f"Feature: {ctx.feature}" + (f"\n\n{input_text}" if input_text and input_text != ctx.feature else "")
    msgs = [ChatMessage("system", PREAMBLE), ChatMessage("user", material)]
    if a.system_prompt:
        msgs.append(ChatMessage("user", a.system_prompt))
    reply = await ctx.call(name, msgs, label="reply")
    arts = () if a.artefact == "text" else (Artefact(a.artefact, f"{step.id}.{a.artefact}", reply.text),)
    return StepResult(reply.text, arts)


def ensure_patterns() -> None:
    """Load the pattern library if there is one; make sure the ``agent`` step type exists."""
    with contextlib.suppress(ImportError):
        import core.orchestration.patterns  # noqa: F401  (fills PATTERNS)
    PATTERNS.setdefault("agent", agent_step)
