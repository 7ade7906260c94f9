"""A scripted :class:`StepContext`: answers calls and approvals from scripts and records everything.

A test double of the protocol the run service implements, so every pattern is tested as pure
control flow: which agents were called, in what order, under which step paths, with what
input; which children and gates were opened; what was declared to preflight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.orchestration.contracts import (
    AgentReply,
    AgentSpec,
    ApprovalDecision,
    Artefact,
    ChatMessage,
    RunStop,
    StepContext,
)
from core.orchestration.spec import load_catalog


@dataclass
class Say:
    """One scripted reply: its text, how many times it yields to the loop first, or an error to raise."""

    text: str = ""
    ticks: int = 0
    error: BaseException | None = None


Script = Mapping[str, Sequence[str | Say]] | Callable[[str, str, Sequence[ChatMessage]], str | Say]


@dataclass
class Call:
    path: str
    agent: str
    label: str
    messages: tuple[ChatMessage, ...]

    @property
    def material(self) -> str:
        return self.messages[1].content

    @property
    def instructions(self) -> str:
        return self.messages[-1].content


@dataclass
class Record:
    calls: list[Call] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)  # (path, title)
    # (path, gate, artefact, timeout)
    gates: list[tuple[str, str, Artefact, float | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    preflights: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def agents_called(self) -> list[str]:
        return [c.agent for c in self.calls]

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]


class Scripted:
    """The scripted context; ``child`` shares the record and the scripts."""

    def __init__(self, script: Script, *, approvals: Sequence[ApprovalDecision | BaseException] = (),
                 agents: Mapping[str, AgentSpec] | None = None, feature: str = "a feature",
                 budget_calls: int | None = None, path: str = "root", record: Record | None = None,
                 _state: dict[str, object] | None = None) -> None:
        self.run_id = "run-1"
        self.path = path
        self.feature = feature
        self.record = record or Record()
        self._agents = dict(agents) if agents is not None else dict(load_catalog().agents)
        fresh: dict[str, object] = {"script": script, "used": {}, "approvals": list(approvals), "budget": budget_calls}
        self._state = _state if _state is not None else fresh

    # -- the protocol --------------------------------------------------------------------

    def agent(self, name: str) -> AgentSpec:
        return self._agents[name]

    def agents(self) -> Sequence[AgentSpec]:
        return list(self._agents.values())

    async def call(self, agent: str, messages: Sequence[ChatMessage], *, label: str) -> AgentReply:
        assert agent in self._agents, f"unknown agent {agent}"
        self.record.calls.append(Call(self.path, agent, label, tuple(messages)))
        budget = self._state["budget"]
        if isinstance(budget, int):
            if budget <= 0:
                raise RunStop(f"run budget spent before {agent}", code="budget")
            self._state["budget"] = budget - 1
        say = self._next(agent, messages)
        self.record.active += 1
        self.record.max_active = max(self.record.max_active, self.record.active)
        try:
            for _ in range(say.ticks):
                await asyncio.sleep(0)
        finally:
            self.record.active -= 1
        if say.error is not None:
            raise say.error
        return AgentReply(agent, say.text, "scripted-model", 10, len(say.text.split()), 1)

    async def preflight(self, agents: Sequence[str]) -> None:
        self.record.preflights.append((self.path, tuple(agents)))
        budget = self._state["budget"]
        if isinstance(budget, int) and len(agents) > budget:
            raise RunStop(f"fan-out of {len(agents)} calls passes the budget of {budget}", code="budget")

    def child(self, label: str, *, title: str) -> StepContext:
        path = f"{self.path}/{label}"
        self.record.children.append((path, title))
        return Scripted({}, agents=self._agents, feature=self.feature, path=path, record=self.record,
                        _state=self._state)

    async def approval(self, gate: str, artefact: Artefact, *, timeout_s: float | None) -> ApprovalDecision:
        self.record.gates.append((self.path, gate, artefact, timeout_s))
        queue = self._state["approvals"]
        assert isinstance(queue, list)
        if not queue:
            raise RunStop(f"gate {gate} timed out", code="gate_timeout")
        got = queue.pop(0)
        if isinstance(got, BaseException):
            raise got
        return got

    def note(self, text: str) -> None:
        self.record.notes.append(text)

    # -- scripts -------------------------------------------------------------------------

    def _next(self, agent: str, messages: Sequence[ChatMessage]) -> Say:
        script = self._state["script"]
        if callable(script):
            got = script(agent, self.path, messages)
        else:
            assert isinstance(script, Mapping)
            used = self._state["used"]
            assert isinstance(used, dict)
            i = used.get(agent, 0)
            lines = script.get(agent, ())
            assert i < len(lines), f"no scripted reply left for {agent} (call {i + 1})"
            used[agent] = i + 1
            got = lines[i]
        return got if isinstance(got, Say) else Say(got)


def ctx(script: Script, **kw: object) -> Scripted:
    """A root scripted context (see :class:`Scripted` for the keywords)."""
    return Scripted(script, **kw)  # type: ignore[arg-type]
