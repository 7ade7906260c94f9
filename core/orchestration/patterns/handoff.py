"""``handoff``: one agent holds the conversation and may hand it to another listed agent.

The first agent answers the input.  An agent hands off by ending its reply with a line
``HANDOFF: <agent>`` naming another agent of the step; the receiver then answers, seeing
what its input filter lets through: ``history`` (the input and every reply so far),
``last`` (only the reply that handed over) or ``original`` (only the step's input).
``filters`` sets the filter per receiving agent.  A reply without a handoff line ends the
step with that reply.  More than ``max_handoffs`` handoffs stop the step, naming the chain
(a loop shows as agents repeating); a handoff to an agent outside the step fails it.
"""

from __future__ import annotations

from core.orchestration.contracts import StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import agent_result, call_agent, marker, strip_markers


def _instructions(ctx: StepContext, me: str, agents: tuple[str, ...]) -> str:
    others = [f"{a} ({ctx.agent(a).role})" for a in agents if a != me]
    return ("If one of these agents should handle this instead of you, end your reply with one line "
            f"'HANDOFF: <agent name>' naming one of: {', '.join(others)}. Otherwise answer fully yourself.")


def _filtered(kind: str, original: str, turns: list[tuple[str, str]]) -> str:
    if kind == "original" or not turns:
        return original
    if kind == "last":
        agent, text = turns[-1]
        return f"{agent} handed this over to you:\n{text}"
    return original + "".join(f"\n\n## {agent} said\n{text}" for agent, text in turns)


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run the handoff chain; see the module docstring."""
    o = step.options
    limit = int(o.get("max_handoffs", 4))
    default = o.get("input_filter", "history")
    filters = o.get("filters", {})
    current = step.agents[0]
    chain = [current]
    turns: list[tuple[str, str]] = []
    while True:
        n = len(turns) + 1
        kind = filters.get(current, default) if turns else "original"
        sub = ctx.child(f"turn-{n}", title=current)
        reply = await call_agent(sub, current, _filtered(kind, input_text, turns), label="call",
                                 extra=_instructions(ctx, current, step.agents))
        target = marker(reply.text, "HANDOFF")
        text = strip_markers(reply.text, "HANDOFF")
        if target is None or target.strip().lower() == current:
            return agent_result(ctx, current, step.id, text, reason=f"answered by {current} after {n - 1} handoffs")
        target = target.strip().split()[0].strip("`'\".,").lower()
        if target not in step.agents:
            return StepResult(text, status="failed", reason=(
                f"{current} handed off to {target!r}, which is not one of this step's agents "
                f"({', '.join(step.agents)})"))
        if len(chain) - 1 >= limit:
            return StepResult(text, status="stopped", reason=(
                f"handoff limit reached: {limit} handoffs ({' -> '.join(chain)}) and {current} wanted to hand to "
                f"{target}; raise max_handoffs or give the agents clearer roles"))
        ctx.note(f"{current} hands off to {target}")
        turns.append((current, text))
        chain.append(target)
        current = target
