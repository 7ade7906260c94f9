"""``group_chat``: the agents discuss in rounds until the consensus rule holds or the round cap is hit.

Every reply ends with ``VERDICT: AGREE`` or ``VERDICT: DISAGREE`` (``APPROVE`` counts as
agreement), the agent's vote on the proposal as it stands.

* ``round_robin``: each round every agent speaks once, in order, seeing the discussion.
* ``moderated``: each round the moderator names the next speaker (``NEXT: <agent>``), or
  closes the chat (``DECISION: DONE``, with ``consensus = "moderator"``).

Consensus rules, checked after each round on each agent's latest vote: ``unanimous``,
``majority`` (more than half), ``moderator`` (the moderator closes the chat; in round-robin
mode it is asked after each round), ``none`` (all rounds run; always done).  Each round is
a sub-step, declared to ``ctx.preflight`` before its calls.  Without consensus after
``max_rounds`` the step stops with the votes.  The output is the discussion.
"""

from __future__ import annotations

from core.orchestration.contracts import Artefact, StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import call_agent, marker, strip_markers


def vote(text: str) -> bool:
    """True when the reply's verdict is agreement."""
    v = (marker(text, "VERDICT") or "").upper()
    return v.startswith("AGREE") or v.startswith("APPROVE")


def _transcript(original: str, said: list[tuple[str, int, str]]) -> str:
    return original + "".join(f"\n\n## {a} (round {r})\n{t}" for a, r, t in said)


def _speak_rules(ctx: StepContext, me: str, agents: tuple[str, ...], rnd: int, cap: int) -> str:
    others = ", ".join(f"{a} ({ctx.agent(a).role})" for a in agents if a != me)
    return (f"You are in a discussion with {others}; this is round {rnd} of at most {cap}. Read the discussion "
            "above, add what is missing or wrong, and keep to your role. End with one line: 'VERDICT: AGREE' if you "
            "accept the current proposal as it stands, else 'VERDICT: DISAGREE' followed by what must change.")


def _moderate_rules(agents: tuple[str, ...], can_close: bool) -> str:
    close = " or 'DECISION: DONE' when the discussion has reached its conclusion" if can_close else ""
    return (f"You moderate a discussion between {', '.join(agents)}. Reply with one line 'NEXT: <agent>' naming "
            f"who should speak next{close}, and one sentence why.")


def _agreed(rule: str, agents: tuple[str, ...], votes: dict[str, bool]) -> bool:
    yes = sum(1 for a in agents if votes.get(a))
    return yes == len(agents) if rule == "unanimous" else yes > len(agents) // 2 if rule == "majority" else False


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run the rounds; see the module docstring."""
    o = step.options
    agents, mod, rule, cap = step.agents, o.get("moderator"), o.get("consensus", "majority"), int(o["max_rounds"])
    moderated = o.get("mode") == "moderated"
    said: list[tuple[str, int, str]] = []
    votes: dict[str, bool] = {}
    for rnd in range(1, cap + 1):
        sub = ctx.child(f"round-{rnd}", title=f"round {rnd}")
        closed = False
        if moderated:
            assert mod is not None  # checked when the workflow was loaded
            await sub.preflight([mod])
            m = await call_agent(sub, mod, _transcript(input_text, said), label="moderator",
                                 extra=_moderate_rules(agents, rule == "moderator"))
            decision = (marker(m.text, "DECISION") or "").upper()
            if rule == "moderator" and decision.startswith("DONE"):
                closed = True
            else:
                nxt = (marker(m.text, "NEXT") or "").strip().split(" ")[0].strip("`'\".,").lower()
                if nxt not in agents:
                    return StepResult(_transcript(input_text, said), status="failed", reason=(
                        f"the moderator {mod} named {nxt or 'no one'!r} to speak, not one of {', '.join(agents)}"))
                speakers: tuple[str, ...] = (nxt,)
        else:
            speakers = agents
        if not closed:
            await sub.preflight(list(speakers) + ([mod] if rule == "moderator" and mod and not moderated else []))
            for a in speakers:
                r = await call_agent(sub, a, _transcript(input_text, said), label=a,
                                     extra=_speak_rules(ctx, a, agents, rnd, cap))
                votes[a] = vote(r.text)
                said.append((a, rnd, strip_markers(r.text, "VERDICT")))
            if rule == "moderator" and not moderated:
                assert mod is not None
                m = await call_agent(sub, mod, _transcript(input_text, said), label="moderator",
                                     extra="You moderate this discussion. Reply 'DECISION: DONE' if it has reached "
                                           "its conclusion, else 'DECISION: CONTINUE' and what is still open.")
                closed = (marker(m.text, "DECISION") or "").upper().startswith("DONE")
        text = _transcript(input_text, said)
        if closed or (rule in ("unanimous", "majority") and _agreed(rule, agents, votes)):
            why = "the moderator closed the discussion" if closed else f"{rule} agreement"
            return StepResult(text, (Artefact("text", step.id, text),), reason=f"{why} in round {rnd}")
    text = _transcript(input_text, said)
    if rule == "none":
        return StepResult(text, (Artefact("text", step.id, text),), reason=f"{cap} rounds held")
    shown = ", ".join(f"{a} {'agrees' if votes.get(a) else 'disagrees' if a in votes else 'did not speak'}"
                      for a in agents)
    return StepResult(text, status="stopped", reason=(
        f"no consensus ({rule}) after {cap} rounds, the cap: {shown}; raise max_rounds or settle it by hand"))
