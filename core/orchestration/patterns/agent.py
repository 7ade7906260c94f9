"""``agent``: one call of one agent; its reply is the step's output and artefact."""

from __future__ import annotations

from core.orchestration.contracts import StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import agent_result, call_agent


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Call ``step.agents[0]`` once on the input."""
    name = step.agents[0]
    reply = await call_agent(ctx, name, input_text, label="call")
    return agent_result(ctx, name, step.id, reply.text)
