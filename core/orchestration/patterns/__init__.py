"""The step types: one module per pattern, each written only against ``StepContext``.

Importing this package fills :data:`core.orchestration.contracts.PATTERNS`; the run
service starts a workflow with ``run_step(workflow.root, feature_text, ctx)``.
"""

from __future__ import annotations

from core.orchestration.contracts import PATTERNS
from core.orchestration.patterns import (
    agent,
    approval,
    auto,
    group_chat,
    handoff,
    nested,
    parallel,
    sequential,
    triage,
)
from core.orchestration.patterns._common import run_step

PATTERNS.update({
    "agent": agent.run, "sequential": sequential.run, "parallel": parallel.run, "handoff": handoff.run,
    "triage": triage.run, "approval": approval.run, "group_chat": group_chat.run, "nested": nested.run,
    "auto": auto.run,
})

__all__ = ["PATTERNS", "run_step"]
