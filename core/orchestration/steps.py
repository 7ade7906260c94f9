"""Step trees as data: the keys every step takes, the options of each step type, their checks.

A step is a TOML table::

    { id = "reviews", type = "parallel", join = "quorum", quorum = 2, steps = [ ... ] }

``id``, ``type``, ``title``, ``agent`` / ``agents``, ``steps`` (children) and ``max_turns``
are common; every other key is an option of the step's type, validated by that type's
model below (an unknown key is refused with the keys the type knows).  The result is a
:class:`~core.orchestration.contracts.StepSpec` tree whose ``options`` hold the validated
values with their defaults filled in, so a pattern reads ``step.options["join"]`` without
checking it again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from core.orchestration.contracts import StepSpec
from core.orchestration.specfile import Loc, Problem

SDD_STAGES: tuple[str, ...] = ("requirements", "design", "tasks", "implementation", "review", "test")
"""The stages a triage step classifies into (the SDD loop's task kinds)."""

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
COMMON = ("id", "type", "title", "agent", "agents", "steps", "max_turns")


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentOpts(_Opts):
    """``agent``: one call of one agent."""


class SequentialOpts(_Opts):
    """``sequential``: children in order, each one's output the next one's input."""

    on_error: Literal["stop", "continue", "retry"] = "stop"
    retries: int = Field(1, ge=1, le=10)  # with on_error = "retry": attempts after the first


class ParallelOpts(_Opts):
    """``parallel``: the children as branches, at most ``max_concurrency`` at once."""

    join: Literal["all", "first", "majority", "quorum"] = "all"
    quorum: int | None = Field(None, ge=1, le=64)
    max_concurrency: int = Field(4, ge=1, le=64)
    priority: dict[str, int] = {}  # branch id -> priority (higher starts first)
    after: dict[str, list[str]] = {}  # branch id -> branch ids it waits for


class HandoffOpts(_Opts):
    """``handoff``: the first agent answers or hands the conversation to another listed agent."""

    max_handoffs: int = Field(4, ge=1, le=50)
    input_filter: Literal["history", "last", "original"] = "history"
    filters: dict[str, Literal["history", "last", "original"]] = {}  # per receiving agent


class TriageOpts(_Opts):
    """``triage``: classify the input into an SDD stage, then run that stage's child step."""

    method: Literal["keyword", "llm"] = "keyword"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    routes: dict[str, str]  # stage -> child step id
    keywords: dict[str, list[str]] = {}  # stage -> extra keywords (added to the built-in ones)
    fallback: str | None = None  # child step id to run below the threshold; None: stop


class ApprovalOpts(_Opts):
    """``approval``: a human gate over the one child step that produces the artefact."""

    gate: str | None = None
    max_revisions: int = Field(2, ge=0, le=10)
    timeout_s: float | None = Field(None, gt=0, le=30 * 24 * 3600)


class GroupChatOpts(_Opts):
    """``group_chat``: the agents talk in rounds until they agree or the round cap is hit."""

    mode: Literal["round_robin", "moderated"] = "round_robin"
    moderator: str | None = None
    max_rounds: int = Field(3, ge=1, le=20)
    consensus: Literal["none", "unanimous", "majority", "moderator"] = "majority"


class NestedOpts(_Opts):
    """``nested``: ``agent`` may delegate sub-tasks to ``agents``, who may delegate in turn."""

    max_depth: int = Field(2, ge=1, le=5)
    max_delegations: int = Field(3, ge=1, le=10)  # per reply


class AutoOpts(_Opts):
    """``auto``: pick the best-scoring agent for the input (and the step's task kind), then call it."""

    task: str | None = None
    min_score: float = Field(0.0, ge=0.0)
    fallback: str | None = None  # agent to call when no agent scores above min_score; None: stop


OPTIONS: dict[str, type[_Opts]] = {
    "agent": AgentOpts, "sequential": SequentialOpts, "parallel": ParallelOpts, "handoff": HandoffOpts,
    "triage": TriageOpts, "approval": ApprovalOpts, "group_chat": GroupChatOpts, "nested": NestedOpts,
    "auto": AutoOpts,
}
"""Step type -> its options model (docs/workflows.md lists them)."""

# Which step types need children / agents, and how many.
_CHILDREN = {"sequential": 1, "parallel": 1, "triage": 1, "approval": 1}
_NO_CHILDREN = ("agent", "handoff", "group_chat", "nested", "auto")


_TAKES = {"agent": ("agent", "triage", "nested"), "agents": ("handoff", "group_chat", "nested", "auto")}


def _default_id(raw: Mapping[str, Any], kind: str, index: int, taken: set[str]) -> str:
    """The agent's name for an agent step (``name-2`` when a sibling has it), else ``<type>-<n>``."""
    base = raw["agent"] if isinstance(raw.get("agent"), str) else f"{kind}-{index + 1}"
    sid, n = base, 1
    while sid in taken:
        n += 1
        sid = f"{base}-{n}"
    return sid


def _keys(model: type[_Opts]) -> str:
    return ", ".join(model.model_fields) or "(none)"


class StepChecker:
    """Validates step tables against the agents known, collecting every problem."""

    def __init__(self, agents: Mapping[str, Any], task_kinds: Sequence[str]) -> None:
        self.agents = agents
        self.task_kinds = tuple(task_kinds)
        self.problems: list[Problem] = []

    def bad(self, loc: Loc, message: str, fix: str = "") -> None:
        self.problems.append(Problem(loc, message, fix))

    def _agent(self, loc: Loc, name: Any) -> str | None:
        if not isinstance(name, str) or name not in self.agents:
            self.bad(loc, f"no agent {name!r}",
                     f"use one of {', '.join(sorted(self.agents))}, or define it in agents.toml")
            return None
        return name

    def steps(self, raw: Any, loc: Loc) -> tuple[StepSpec, ...]:
        """A list of step tables -> StepSpecs (ids filled in and unique among siblings)."""
        if not isinstance(raw, list) or not raw:
            self.bad(loc, "must be a non-empty list of step tables",
                     'write steps = [ { type = "agent", agent = "..." } ] or [[...steps]] tables')
            return ()
        out: list[StepSpec] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            spec = self.step(item, (*loc, i), i, taken=seen)
            if spec is None:
                continue
            if spec.id in seen:
                self.bad((*loc, i, "id"), f"id {spec.id!r} is used twice among these steps",
                         "give each sibling step its own id")
            seen.add(spec.id)
            out.append(spec)
        return tuple(out)

    def step(self, raw: Any, loc: Loc, index: int, taken: set[str] | None = None) -> StepSpec | None:
        if not isinstance(raw, dict):
            self.bad(loc, "a step must be a table", '{ type = "agent", agent = "..." }')
            return None
        kind = raw.get("type", "agent")
        if kind not in OPTIONS:
            self.bad((*loc, "type"), f"unknown step type {kind!r}", f"use one of {', '.join(OPTIONS)}")
            return None
        ok = True
        agents: list[str] = []
        if "agent" in raw:
            got = self._agent((*loc, "agent"), raw["agent"])
            ok = ok and got is not None
            agents += [got] if got else []
        if "agents" in raw:
            lst = raw["agents"]
            if not isinstance(lst, list) or not lst:
                self.bad((*loc, "agents"), "must be a non-empty list of agent names", 'agents = ["a", "b"]')
                ok = False
            else:
                for j, a in enumerate(lst):
                    got = self._agent((*loc, "agents", j), a)
                    ok = ok and got is not None
                    agents += [got] if got else []
        for key in ("agent", "agents"):
            if key in raw and kind not in _TAKES[key]:
                self.bad((*loc, key), f"{kind} steps take no {key}",
                         "remove it" + ("; put agent steps in its steps" if kind in _CHILDREN else ""))
                ok = False
        sid = raw.get("id") or _default_id(raw, kind, index, taken or set())
        if not isinstance(sid, str) or not ID_RE.match(sid):
            self.bad((*loc, "id"), f"bad step id {sid!r}", "use lower-case letters, digits, - and _ (at most 48)")
            ok = False
        title = raw.get("title", "")
        if not isinstance(title, str):
            self.bad((*loc, "title"), "must be a string", 'title = "Design review"')
            ok = False
        turns = raw.get("max_turns")
        if turns is not None and (not isinstance(turns, int) or isinstance(turns, bool) or not 1 <= turns <= 1000):
            self.bad((*loc, "max_turns"), f"must be a whole number from 1 to 1000 (got {turns!r})", "max_turns = 20")
            ok = False
        children: tuple[StepSpec, ...] = ()
        if "steps" in raw:
            if kind in _NO_CHILDREN:
                self.bad((*loc, "steps"), f"a {kind} step has no child steps",
                         "remove steps, or use a sequential/parallel step around them")
                ok = False
            else:
                n = len(self.problems)
                children = self.steps(raw["steps"], (*loc, "steps"))
                ok = ok and len(self.problems) == n
        elif kind in _CHILDREN:
            self.bad(loc, f"a {kind} step needs child steps", "add steps = [ ... ]")
            ok = False
        model = OPTIONS[kind]
        opts_raw = {k: v for k, v in raw.items() if k not in COMMON}
        try:
            opts = model.model_validate(opts_raw)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                eloc = tuple(err.get("loc", ()))
                if err.get("type") == "extra_forbidden":
                    self.bad((*loc, *eloc), f"unknown option for a {kind} step",
                             f"a {kind} step takes {', '.join(COMMON)} and {_keys(model)}")
                else:
                    got = err.get("input")
                    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
                    self.bad((*loc, *eloc), f"{err.get('msg', 'invalid value')}{shown}",
                             f"see the {kind} step's options in docs/workflows.md")
            return None
        options = {**opts.model_dump(), **({"title": title} if title else {})}
        if turns is not None:
            options["max_turns"] = turns
        spec = StepSpec(id=str(sid), type=kind, agents=tuple(agents), options=options, children=children)
        if not ok:
            return None
        self._check(spec, loc, raw)
        return spec

    def _check(self, s: StepSpec, loc: Loc, raw: Mapping[str, Any]) -> None:
        """Rules across keys, per type."""
        o = s.options
        ids = [c.id for c in s.children]
        if s.type in ("agent",) and len(s.agents) != 1:
            self.bad(loc, "an agent step calls exactly one agent", 'agent = "software-developer"')
        if s.type == "approval" and len(s.children) != 1:
            self.bad((*loc, "steps"), "an approval gate wraps exactly one step (the one producing the artefact)",
                     "put the producing step alone in steps; chain more with a sequential step")
        if s.type == "parallel":
            if o["join"] == "quorum" and not (o["quorum"] and o["quorum"] <= len(ids)):
                self.bad((*loc, "quorum"), f"join = 'quorum' needs quorum from 1 to {len(ids)} (the branches)",
                         f"set quorum = {max(1, len(ids) // 2 + 1)}")
            for key in ("priority", "after"):
                for bid in o[key]:
                    if bid not in ids:
                        self.bad((*loc, key), f"{bid!r} is not one of this step's branches",
                                 f"use a branch id: {', '.join(ids)}")
            for bid, deps in o["after"].items():
                for d in deps:
                    if d not in ids or d == bid:
                        self.bad((*loc, "after"), f"{bid!r} waits for {d!r}, which is not another branch",
                                 f"use a branch id: {', '.join(i for i in ids if i != bid)}")
            if _has_cycle(o["after"]):
                self.bad((*loc, "after"), "the branches wait for each other in a cycle", "remove one dependency")
        if s.type in ("handoff", "group_chat") and len(s.agents) < 2:
            self.bad((*loc, "agents"), f"a {s.type} step needs at least two agents", 'agents = ["a", "b"]')
        if s.type == "handoff":
            for name in o["filters"]:
                if name not in s.agents:
                    self.bad((*loc, "filters"), f"{name!r} is not one of this step's agents",
                             f"use one of {', '.join(s.agents)}")
        if s.type == "group_chat":
            mod = o["moderator"]
            if (o["mode"] == "moderated" or o["consensus"] == "moderator") and not mod:
                self.bad(loc, "a moderated chat (or consensus = 'moderator') needs a moderator",
                         'moderator = "code-reviewer"')
            if mod:
                self._agent((*loc, "moderator"), mod)
        if s.type == "triage":
            if o["method"] == "llm" and len(s.agents) != 1:
                self.bad(loc, "an llm triage needs the classifying agent", 'agent = "triage"')
            for stage, target in o["routes"].items():
                if stage not in SDD_STAGES:
                    self.bad((*loc, "routes"), f"unknown stage {stage!r}", f"use one of {', '.join(SDD_STAGES)}")
                if target not in ids:
                    self.bad((*loc, "routes"), f"stage {stage!r} routes to {target!r}, which is not a child step",
                             f"use a child id: {', '.join(ids)}")
            for stage in o["keywords"]:
                if stage not in SDD_STAGES:
                    self.bad((*loc, "keywords"), f"unknown stage {stage!r}", f"use one of {', '.join(SDD_STAGES)}")
            if o["fallback"] is not None and o["fallback"] not in ids:
                self.bad((*loc, "fallback"), f"fallback {o['fallback']!r} is not a child step",
                         f"use a child id: {', '.join(ids)}")
        if s.type == "nested" and not (s.agents and "agent" in raw):
            self.bad(loc, "a nested step needs the delegating agent", 'agent = "task-planner"')
        if s.type == "auto":
            if o["task"] is not None and o["task"] not in self.task_kinds:
                self.bad((*loc, "task"), f"unknown task kind {o['task']!r}", f"use one of {', '.join(self.task_kinds)}")
            if o["fallback"] is not None:
                self._agent((*loc, "fallback"), o["fallback"])


def _has_cycle(after: Mapping[str, Sequence[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(n: str) -> bool:
        if state.get(n) == 1:
            return True
        if state.get(n) == 2:
            return False
        state[n] = 1
        if any(visit(d) for d in after.get(n, ())):
            return True
        state[n] = 2
        return False

    return any(visit(n) for n in after)
