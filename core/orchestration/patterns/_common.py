"""What the patterns share: running a child step, calling an agent in the estimator's layout, reply markers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.models.estimate import SHARED_PREAMBLE
from core.orchestration.contracts import (
    PATTERNS,
    AgentReply,
    Artefact,
    ChatMessage,
    StepContext,
    StepResult,
    StepSpec,
)
from core.orchestration.spec import render_prompt

# Words that point at each SDD stage (triage by keyword, auto scoring); a step's `keywords` adds to them.
STAGE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "requirements": ("requirement", "requirements", "user story", "acceptance criteria", "ears", "shall", "need",
                     "stakeholder", "scope", "feature request"),
    "design": ("design", "architecture", "architect", "component", "c4", "adr", "interface", "schema", "diagram",
               "data model"),
    "tasks": ("task list", "tasks", "plan", "breakdown", "checklist", "milestone", "estimate", "backlog"),
    "implementation": ("implement", "implementation", "code", "fix", "bug", "refactor", "diff", "patch", "function",
                       "build"),
    "review": ("review", "pull request", "code review", "feedback", "audit", "findings", "approve"),
    "test": ("test", "tests", "testing", "coverage", "failing test", "unit test", "integration test", "regression"),
}


def words(text: str) -> str:
    """Lower-cased text with single spaces, padded, for whole-word phrase matching."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def hits(text_words: str, phrases: Sequence[str]) -> int:
    """How many of ``phrases`` occur in ``text_words`` (from :func:`words`) as whole words."""
    return sum(1 for p in dict.fromkeys(phrases) if words(p) in text_words)


async def run_step(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Run ``step`` with ``ctx`` as its own context (its pattern from :data:`PATTERNS`)."""
    if step.type not in PATTERNS:
        import core.orchestration.patterns  # noqa: F401  (registers every pattern)
    return await PATTERNS[step.type](step, input_text, ctx)


async def run_child(child: StepSpec, input_text: str, ctx: StepContext, label: str | None = None) -> StepResult:
    """Run ``child`` as a sub-step of ``ctx`` (shown under it; ``label`` names a retry or a revision)."""
    title = str(child.options.get("title") or (child.agents[0] if child.type == "agent" else child.type))
    return await run_step(child, input_text, ctx.child(label or child.id, title=title))


def messages(ctx: StepContext, agent: str, input_text: str, extra: str = "") -> list[ChatMessage]:
    """The estimator's layout (core/models/estimate.py ``messages``): preamble, material, then instructions."""
    spec = ctx.agent(agent)
    instructions = render_prompt(spec, feature=ctx.feature, input=input_text)
    if extra:
        instructions = f"{instructions}\n\n{extra}"
    return [ChatMessage("system", SHARED_PREAMBLE), ChatMessage("user", input_text or ctx.feature),
            ChatMessage("user", instructions)]


async def call_agent(ctx: StepContext, agent: str, input_text: str, *, label: str, extra: str = "") -> AgentReply:
    """One durable call of ``agent`` on ``input_text`` (``extra``: instructions this pattern adds)."""
    return await ctx.call(agent, messages(ctx, agent, input_text, extra), label=label)


def agent_result(ctx: StepContext, agent: str, name: str, text: str, reason: str | None = None) -> StepResult:
    """A done step whose artefact is ``text`` of the agent's artefact kind."""
    return StepResult(output=text, artefacts=(Artefact(ctx.agent(agent).artefact, name, text),), reason=reason)


def subtree_agents(step: StepSpec) -> list[str]:
    """Every agent a step's subtree names (what a fan-out declares to ``ctx.preflight``)."""
    out = list(step.agents)
    mod = step.options.get("moderator")
    if isinstance(mod, str):
        out.append(mod)
    for c in step.children:
        out += subtree_agents(c)
    return out


def marker(text: str, name: str) -> str | None:
    """The value of the last ``NAME: value`` line of ``text`` (case-insensitive), or None."""
    found = None
    for line in text.splitlines():
        m = re.match(rf"^\s*\**{name}\**\s*:\s*(.+?)\s*$", line, re.IGNORECASE)
        if m:
            found = m.group(1)
    return found


def strip_markers(text: str, *names: str) -> str:
    """``text`` without its ``NAME: ...`` control lines."""
    pat = re.compile(rf"^\s*\**({'|'.join(names)})\**\s*:", re.IGNORECASE)
    return "\n".join(ln for ln in text.splitlines() if not pat.match(ln)).strip()
