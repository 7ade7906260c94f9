"""``auto``: pick the agent that best fits the input (and the step's task kind), then call it once.

Score of an agent: 3 when its task kind is the step's ``task``, plus one per keyword of its
stage (triage's built-in stage keywords), word of its role or name found in the input.
The highest score above ``min_score`` wins (ties: the order of ``agents``, else of the
workflow's agents); with none above it the ``fallback`` agent is called, or, with no
fallback, the step stops listing the scores.
"""

from __future__ import annotations

from core.orchestration.contracts import AgentSpec, StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import (
    STAGE_KEYWORDS,
    agent_result,
    call_agent,
    hits,
    words,
)


def score(agent: AgentSpec, text: str, task: str | None) -> float:
    """How well ``agent`` fits ``text`` (see the module docstring)."""
    w = words(text)
    own = [p for p in words(f"{agent.role} {agent.name}").split() if len(p) > 3]
    kind = 3.0 if task and agent.task_kind == task else 0.0
    return kind + hits(w, (*STAGE_KEYWORDS.get(agent.task_kind, ()), *own))


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Score, pick, call; see the module docstring."""
    o = step.options
    names = list(step.agents) or [a.name for a in ctx.agents()]
    if not names:
        return StepResult(input_text, status="stopped", reason="auto: there is no agent to pick from")
    scores = {n: score(ctx.agent(n), input_text, o.get("task")) for n in names}
    best = max(names, key=lambda n: scores[n])  # max keeps the first of equal scores
    shown = ", ".join(f"{n} {scores[n]:g}" for n in sorted(names, key=lambda n: -scores[n]))
    if scores[best] <= float(o.get("min_score", 0.0)):
        if not o.get("fallback"):
            return StepResult(input_text, status="stopped", reason=(
                f"auto: no agent scored above min_score {o.get('min_score', 0.0):g} (scores: {shown}); set fallback "
                "or name the agent"))
        best = str(o["fallback"])
        ctx.note(f"auto: no agent scored above min_score ({shown}); calling the fallback {best}")
    else:
        ctx.note(f"auto picked {best} (scores: {shown})")
    reply = await call_agent(ctx, best, input_text, label=f"call-{best}")
    return agent_result(ctx, best, step.id, reply.text, reason=f"picked {best} (scores: {shown})")
