"""Where a run finds its workflow and agents: one :class:`RunPlan` per run attempt.

The workflows and agents are the data the estimator prices too (``core/models/workflows.toml`` and
``agents.toml``, plus the user's and the project's files), read by the spec loader
(``core.orchestration.spec.load_catalog``), so a run is exactly the workflow that was estimated.
The test hook ``MUSUBI_TEST_RUNS=1`` adds workflows from ``$MUSUBI_HOME/test-workflows.json``
(core/orchestration/testkit.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.orchestration.contracts import (
    AgentSpec,
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



def _from_spec(name: str, project_root: str | None) -> RunPlan:
    from core.config import config_dir
    from core.orchestration import spec

    cat = spec.load_catalog(project_root=project_root, user_dir=config_dir())
    wf = cat.workflow(name)  # NotFound naming the known workflows

    def budget(x: Any) -> Budget:
        return Budget(x.tokens, x.cost_micros, x.turns)

    return RunPlan(wf.name, tuple(wf.steps), dict(cat.agents), budget(wf.budget),
                   {k: budget(v) for k, v in wf.agent_budgets.items()}, wf.on_error, wf.retries)


def load_plan(name: str, project_root: str | None, home: Path | None = None) -> RunPlan:
    """The workflow ``name`` as a plan; a 404 naming the known workflows when there is none."""
    if home is not None:
        from core.orchestration import testkit

        if testkit.enabled():
            plan = testkit.plan(home, name)
            if plan is not None:
                return plan
    return _from_spec(name, project_root)


def ensure_patterns() -> None:
    """Load the pattern library (importing it fills ``PATTERNS``)."""
    import core.orchestration.patterns  # noqa: F401
