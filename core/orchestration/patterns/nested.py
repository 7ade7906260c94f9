"""``nested``: an agent delegates sub-tasks to other agents, who may delegate in turn, up to ``max_depth``.

The delegating agent (``agent``) may answer directly, or reply only with lines
``DELEGATE <agent>: <sub-task>`` (at most ``max_delegations``) naming agents of the step's
``agents`` (every agent of the catalog, ``ctx.agents()``, when none are listed).  Each delegation runs as a
sub-step, in order; the delegate may delegate further while the depth allows.  Then the
delegator is called again with the answers and must answer without delegating.  A
delegation asked for past ``max_depth``, to an agent outside the list, past
``max_delegations``, or again after the answers came back, stops the step and says which.
"""

from __future__ import annotations

import re

from core.orchestration.contracts import StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import agent_result, call_agent

_LINE = re.compile(r"^\s*DELEGATE\s+([a-z0-9][a-z0-9_-]*)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


class _Limit(Exception):
    """A delegation limit was hit; the step stops with this reason."""


def delegations(text: str) -> list[tuple[str, str]]:
    """The (agent, sub-task) pairs a reply asks for."""
    return [(m.group(1).lower(), m.group(2)) for m in _LINE.finditer(text)]


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run the delegation tree; see the module docstring."""
    o = step.options
    max_depth, per_reply = int(o.get("max_depth", 2)), int(o.get("max_delegations", 3))
    top = step.agents[0]
    allowed = step.agents[1:] or tuple(a.name for a in ctx.agents() if a.name != top)

    def rules(depth: int) -> str:
        if depth >= max_depth:
            return "Answer the task yourself; you cannot delegate."
        who = ", ".join(f"{a} ({ctx.agent(a).role})" for a in allowed)
        return (f"You may delegate sub-tasks to: {who}. To delegate, reply only with lines 'DELEGATE <agent>: "
                f"<sub-task>' (at most {per_reply}); their answers come back to you. Otherwise answer directly.")

    async def solve(agent: str, task: str, sub: StepContext, depth: int, chain: list[str]) -> str:
        reply = await call_agent(sub, agent, task, label="call", extra=rules(depth))
        asked = delegations(reply.text)
        if not asked:
            return reply.text
        path = " -> ".join(chain)
        if depth >= max_depth:
            raise _Limit(f"nested depth limit reached: max_depth = {max_depth} ({path}) and {agent} asked to delegate "
                         f"to {asked[0][0]}")
        if len(asked) > per_reply:
            raise _Limit(f"{agent} asked for {len(asked)} delegations; max_delegations = {per_reply}")
        answers = []
        for i, (who, sub_task) in enumerate(asked, 1):
            if who not in allowed:
                raise _Limit(f"{agent} delegated to {who!r}, who is not allowed here ({', '.join(allowed)})")
            ctx.note(f"{agent} delegates to {who} (depth {depth + 1})")
            got = await solve(who, sub_task, sub.child(f"d{i}-{who}", title=who), depth + 1, [*chain, who])
            answers.append(f"## {who} answered: {sub_task}\n{got}")
        final = await call_agent(sub, agent, task + "\n\n" + "\n\n".join(answers), label="compose",
                                 extra="Use the answers of the agents you delegated to and give the final answer; "
                                       "do not delegate again.")
        if delegations(final.text):
            raise _Limit(f"{agent} asked to delegate again after its delegates answered")
        return final.text

    try:
        text = await solve(top, input_text, ctx, 0, [top])
    except _Limit as exc:
        return StepResult(input_text, status="stopped", reason=str(exc))
    return agent_result(ctx, top, step.id, text)
