"""Agents and workflows as data: one source for the cost estimator and the run service.

Four places hold definitions, later ones overriding earlier ones by name (a whole
agent or workflow is replaced, never merged key by key):

1. shipped: ``core/models/agents.toml`` and ``core/models/workflows.toml``;
2. installed plug-ins: the package each ``musubi.agents`` entry point names holds an
   ``agents.toml`` and/or ``workflows.toml`` (docs/plugins.md), in entry-point name order;
3. the user's config folder (:func:`core.config.config_dir`): ``agents.toml``, ``workflows.toml``;
4. the project: ``<project root>/.musubi/agents.toml``, ``.musubi/workflows.toml``.

Every file is validated whole (pydantic for the shapes, :mod:`core.orchestration.steps`
for step trees, cross-checks of agent names against the merged agent set); a bad file
raises :class:`~core.orchestration.specfile.SpecError` naming the file, each bad key's
line and the fix.  :func:`plan` turns a workflow into the calls the estimator prices, so
a workflow that can be estimated is exactly the workflow that runs.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from core.errors import NotFound
from core.models.kinds import TASK_KINDS, TIERS
from core.orchestration.contracts import AgentSpec, StepSpec
from core.orchestration.specfile import Problem, SpecError, format_problems, read_spec_file
from core.orchestration.steps import StepChecker

AGENTS_FILE = "agents.toml"
WORKFLOWS_FILE = "workflows.toml"
PROJECT_DIR = ".musubi"
ARTEFACTS = ("text", "requirements", "design", "tasks", "diff", "review", "tests", "triage")
PLACEHOLDERS = ("feature", "input", "role", "name")
Source = Literal["shipped", "plugin", "user", "project"]
AGENT_ENTRY_POINTS = "musubi.agents"


class _AgentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=200)
    task: str
    prompt: str = Field(min_length=1, max_length=40_000)
    tier: str | None = None
    artefact: str = "text"
    context_pack: bool = False
    context_budget: int | None = Field(None, ge=256, le=200_000)


class _BudgetModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(None, ge=1, le=10**10)
    dollars: float | None = Field(None, gt=0, le=100_000)
    turns: int | None = Field(None, ge=1, le=10_000)


class _WorkflowModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    on_error: Literal["stop", "continue", "retry"] = "stop"
    retries: int = Field(1, ge=1, le=10)
    budget: _BudgetModel = Field(default_factory=lambda: _BudgetModel(tokens=None, dollars=None, turns=None))
    agent_budget: dict[str, _BudgetModel] = {}
    steps: Any = None  # a step tree: validated by StepChecker


@dataclass(frozen=True)
class Budget:
    """Caps the run service enforces before dispatch (None: no cap of that kind)."""

    tokens: int | None = None
    cost_micros: int | None = None
    turns: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "dollars": None if self.cost_micros is None else self.cost_micros / 1e6,
                "turns": self.turns}


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: its top-level steps run in sequence (``root``)."""

    name: str
    description: str
    steps: tuple[StepSpec, ...]
    budget: Budget = Budget()
    agent_budgets: Mapping[str, Budget] = field(default_factory=dict)
    on_error: str = "stop"
    retries: int = 1
    source: str = "shipped"  # "shipped" or the path of the user/project file

    @property
    def root(self) -> StepSpec:
        """The step the run service starts: a sequential step over the workflow's steps."""
        return StepSpec(id="root", type="sequential", options={"on_error": self.on_error, "retries": self.retries},
                        children=self.steps)

    def agent_names(self) -> tuple[str, ...]:
        """Every agent some step of the workflow names, in order of first use."""
        out: dict[str, None] = {}

        def walk(s: StepSpec) -> None:
            extra = [s.options.get("moderator")] + ([s.options.get("fallback")] if s.type == "auto" else [])
            for a in (*s.agents, *extra):
                if isinstance(a, str):
                    out[a] = None
            for c in s.children:
                walk(c)

        for s in self.steps:
            walk(s)
        return tuple(out)


@dataclass(frozen=True)
class Catalog:
    """The merged agents and workflows one caller sees, and where each came from."""

    agents: Mapping[str, AgentSpec]
    workflows: Mapping[str, Workflow]
    agent_sources: Mapping[str, str]
    files: tuple[str, ...]  # the user/project files read

    def workflow(self, name: str) -> Workflow:
        if name not in self.workflows:
            raise NotFound(f"unknown workflow {name!r}: known workflows are {', '.join(sorted(self.workflows))} "
                           "(see: musubi workflows list).", code="unknown_workflow")
        return self.workflows[name]

    def agent(self, name: str) -> AgentSpec:
        if name not in self.agents:
            raise NotFound(f"unknown agent {name!r}: known agents are {', '.join(sorted(self.agents))} "
                           "(see: musubi agents list).", code="unknown_agent")
        return self.agents[name]


# -- agents ---------------------------------------------------------------------------------


def _placeholders(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


M = TypeVar("M", bound=BaseModel)


def _entries(data: Mapping[str, Any], table: str, model: type[M],
             problems: list[Problem]) -> Iterator[tuple[str, tuple[str, str], M]]:
    """Each ``[table.NAME]`` of a file validated by ``model``; problems (unknown tables, bad names) collected."""
    for key in data:
        if key != table:
            problems.append(Problem((key,), "unknown table", f"this file holds only [{table}.NAME] tables"))
    raw = data.get(table, {})
    if not isinstance(raw, dict):
        problems.append(Problem((table,), "must be a table", f"write [{table}.NAME] tables"))
        return
    for name, body in raw.items():
        loc = (table, name)
        if not _name_ok(name):
            problems.append(Problem(loc, f"bad {table} name {name!r}", "use lower-case letters, digits and - (max 48)"))
            continue
        try:
            yield name, loc, model.model_validate(body)
        except pydantic.ValidationError as exc:
            problems += _pydantic_problems(exc, loc, model)


def parse_agents(data: Mapping[str, Any], source: str, text: str | None) -> dict[str, AgentSpec]:
    """The ``[agent.NAME]`` tables of one file, validated (SpecError listing every problem)."""
    problems: list[Problem] = []
    out: dict[str, AgentSpec] = {}
    for name, loc, m in _entries(data, "agent", _AgentModel, problems):
        if m.task not in TASK_KINDS:
            problems.append(Problem((*loc, "task"), f"unknown task kind {m.task!r}",
                                    f"use one of {', '.join(TASK_KINDS)}"))
        if m.tier is not None and m.tier not in TIERS:
            problems.append(Problem((*loc, "tier"), f"unknown tier {m.tier!r}", f"use one of {', '.join(TIERS)}"))
        if m.artefact not in ARTEFACTS:
            problems.append(Problem((*loc, "artefact"), f"unknown artefact {m.artefact!r}",
                                    f"use one of {', '.join(ARTEFACTS)}"))
        try:
            unknown = [f for f in _placeholders(m.prompt) if f not in PLACEHOLDERS]
        except ValueError as exc:
            problems.append(Problem((*loc, "prompt"), f"broken placeholder: {exc}",
                                    "write a literal brace as {{ or }}"))
            unknown = []
        if unknown:
            problems.append(Problem((*loc, "prompt"), f"unknown placeholder {{{unknown[0]}}}",
                                    f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}, or write {{{{ }}}} "
                                    "for a literal brace"))
        if m.context_budget is not None and not m.context_pack:
            problems.append(Problem((*loc, "context_budget"), "a context budget without a context pack",
                                    "set context_pack = true, or remove context_budget"))
        out[name] = AgentSpec(name=name, role=m.role, system_prompt=m.prompt, task_kind=m.task, tier=m.tier,
                              artefact=m.artefact, context_pack=m.context_pack,
                              context_budget=m.context_budget or (4000 if m.context_pack else None))
    if problems:
        raise SpecError(format_problems(source, text, problems, "agents file"), file=source)
    return out


def render_prompt(agent: AgentSpec, *, feature: str, input: str = "") -> str:
    """The agent's instructions with its placeholders filled (templates were checked at load).

    The context pack is not a placeholder: the run service sends it as its own message between
    the material and these instructions, for the agents with ``context_pack = true``.
    """
    return agent.system_prompt.format(feature=feature, input=input, role=agent.role, name=agent.name)


# -- workflows ------------------------------------------------------------------------------


def _name_ok(name: str) -> bool:
    from core.orchestration.steps import ID_RE

    return bool(ID_RE.match(name))


def _pydantic_problems(exc: pydantic.ValidationError, loc: tuple[str | int, ...],
                       model: type[BaseModel]) -> list[Problem]:
    out = []
    for err in exc.errors():
        eloc = tuple(err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            out.append(Problem((*loc, *eloc), "unknown key", f"the keys here are {', '.join(model.model_fields)}"))
        elif err.get("type") == "missing":
            out.append(Problem((*loc, *eloc), "missing", f"add {eloc[-1]} = ..."))
        elif err.get("type") in ("model_type", "dict_type"):
            out.append(Problem((*loc, *eloc), f"must be a table (got {err.get('input')!r})",
                               "write it as a [table] or an inline { key = value } table"))
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            out.append(Problem((*loc, *eloc), f"{err.get('msg', 'invalid value')}{shown}", "see docs/workflows.md"))
    return out


def _budget(m: _BudgetModel) -> Budget:
    return Budget(tokens=m.tokens, cost_micros=None if m.dollars is None else round(m.dollars * 1_000_000),
                  turns=m.turns)


def parse_workflows(data: Mapping[str, Any], source: str, text: str | None,
                    agents: Mapping[str, AgentSpec]) -> dict[str, Workflow]:
    """The ``[workflow.NAME]`` tables of one file, checked against ``agents`` (every problem listed)."""
    problems: list[Problem] = []
    out: dict[str, Workflow] = {}
    for name, loc, m in _entries(data, "workflow", _WorkflowModel, problems):
        for a in m.agent_budget:
            if a not in agents:
                problems.append(Problem((*loc, "agent_budget", a), f"no agent {a!r}",
                                        f"use one of {', '.join(sorted(agents))}"))
        checker = StepChecker(agents, TASK_KINDS)
        steps = checker.steps(m.steps, (*loc, "steps"))
        problems += checker.problems
        if checker.problems:
            continue
        out[name] = Workflow(name=name, description=m.description, steps=steps, budget=_budget(m.budget),
                             agent_budgets={a: _budget(b) for a, b in m.agent_budget.items()},
                             on_error=m.on_error, retries=m.retries, source=source)
    if problems:
        raise SpecError(format_problems(source, text, problems, "workflows file"), file=source)
    return out


# -- loading with precedence ----------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _shipped(name: str) -> tuple[dict[str, Any], str]:
    """The parsed shipped file (read once per process; the parsers never change what they are given)."""
    text = (resources.files("core.models") / name).read_text(encoding="utf-8")
    got = read_spec_file(Path(name), text)
    assert got is not None
    return got


def plugin_folders() -> list[tuple[str, Path]]:
    """(entry point name, package folder) of each installed agents plug-in, by name.

    An entry point of group ``musubi.agents`` names a package (``example = "musubi_example_agents"``);
    its folder holds the plug-in's ``agents.toml`` / ``workflows.toml``.  One that cannot be
    imported is refused like a bad file, naming the plug-in and the fix.
    """
    import importlib.metadata

    out: list[tuple[str, Path]] = []
    for ep in sorted(importlib.metadata.entry_points(group=AGENT_ENTRY_POINTS), key=lambda e: e.name):
        try:
            folder = Path(str(resources.files(ep.module)))
        except (ImportError, TypeError, ValueError) as exc:
            raise SpecError(f"agents plug-in {ep.name!r} ({ep.value}) cannot be loaded: {type(exc).__name__}: "
                            f"{exc}. Reinstall it, or uninstall the package that declares it.") from None
        out.append((ep.name, folder))
    return out


def _layers(project_root: str | Path | None, user_dir: str | Path | None) -> list[tuple[Source, Path]]:
    out: list[tuple[Source, Path]] = [("plugin", folder) for _name, folder in plugin_folders()]
    if user_dir is not None:
        out.append(("user", Path(user_dir)))
    if project_root is not None:
        out.append(("project", Path(project_root) / PROJECT_DIR))
    return out


def load_catalog(*, project_root: str | Path | None = None, user_dir: str | Path | None = None) -> Catalog:
    """Shipped, then plug-in, user and project agents and workflows, each layer overriding by name.

    Every workflow is validated against the merged agent set, so a project workflow may use
    a user agent and a project agent may replace a shipped one.
    """
    data, text = _shipped(AGENTS_FILE)
    agents = parse_agents(data, "core/models/agents.toml", text)
    sources = dict.fromkeys(agents, "shipped")
    files: list[str] = []
    wf_files: list[tuple[str, dict[str, Any], str | None]] = [("shipped", *_shipped(WORKFLOWS_FILE))]
    for _layer, folder in _layers(project_root, user_dir):
        got = read_spec_file(folder / AGENTS_FILE)
        if got is not None:
            files.append(str(folder / AGENTS_FILE))
            mine = parse_agents(got[0], str(folder / AGENTS_FILE), got[1])
            agents.update(mine)
            sources.update(dict.fromkeys(mine, str(folder / AGENTS_FILE)))
        wgot = read_spec_file(folder / WORKFLOWS_FILE)
        if wgot is not None:
            files.append(str(folder / WORKFLOWS_FILE))
            wf_files.append((str(folder / WORKFLOWS_FILE), *wgot))
    workflows: dict[str, Workflow] = {}
    for source, wdata, wtext in wf_files:
        shown = "core/models/workflows.toml" if source == "shipped" else source
        parsed = parse_workflows(wdata, shown, wtext, agents)
        if source == "shipped":
            parsed = {k: _with_source(v, "shipped") for k, v in parsed.items()}
        workflows.update(parsed)
    return Catalog(agents=agents, workflows=workflows, agent_sources=sources, files=tuple(files))


def _with_source(w: Workflow, source: str) -> Workflow:
    from dataclasses import replace

    return replace(w, source=source)


def load_workflow(name: str, *, project_root: str | Path | None = None, user_dir: str | Path | None = None) -> Workflow:
    """The workflow ``name`` as the caller sees it (NotFound naming the known ones)."""
    return load_catalog(project_root=project_root, user_dir=user_dir).workflow(name)


def list_workflows(*, project_root: str | Path | None = None, user_dir: str | Path | None = None) -> list[Workflow]:
    """Every workflow the caller sees, by name."""
    cat = load_catalog(project_root=project_root, user_dir=user_dir)
    return [cat.workflows[n] for n in sorted(cat.workflows)]


def list_agents(*, project_root: str | Path | None = None, user_dir: str | Path | None = None) -> list[AgentSpec]:
    """Every agent the caller sees, by name."""
    cat = load_catalog(project_root=project_root, user_dir=user_dir)
    return [cat.agents[n] for n in sorted(cat.agents)]


# -- what the estimator prices --------------------------------------------------------------


@dataclass(frozen=True)
class PlannedCall:
    """One model call the estimate counts: its step path, agent, task kind and instructions."""

    path: str
    agent: str
    task: str
    prompt: str


def plan(workflow: Workflow, agents: Mapping[str, AgentSpec]) -> list[PlannedCall]:
    """The calls of one run along its planned path (docs/workflows.md "What an estimate counts").

    agent / auto: one call; sequential, nested (the delegator once), approval (the producing
    step once): their children; parallel: every branch; handoff: each listed agent once;
    triage: the classifier (llm) plus its longest route; group chat: every participant in
    every round up to the cap, plus the moderator per round.
    """
    out: list[PlannedCall] = []

    def call(path: str, name: str) -> None:
        a = agents[name]
        out.append(PlannedCall(path, name, a.task_kind, a.system_prompt))

    def walk(s: StepSpec, path: str) -> None:
        here = f"{path}/{s.id}" if path else s.id
        o = s.options
        if s.type in ("agent", "nested"):
            call(here, s.agents[0])
        elif s.type == "auto":
            call(here, pick_for_task(o.get("task"), s.agents or tuple(agents), agents))
        elif s.type == "handoff":
            for a in s.agents:
                call(here, a)
        elif s.type == "group_chat":
            for r in range(o["max_rounds"]):
                if o.get("moderator"):
                    call(f"{here}/round-{r + 1}", o["moderator"])
                for a in s.agents:
                    call(f"{here}/round-{r + 1}", a)
        elif s.type == "triage":
            if o["method"] == "llm":
                call(here, s.agents[0])
            longest: list[PlannedCall] = []
            for c in s.children:
                before = len(out)
                walk(c, here)
                got = out[before:]
                del out[before:]
                longest = got if len(got) > len(longest) else longest
            out.extend(longest)
        else:
            for c in s.children:
                walk(c, here)

    for s in workflow.steps:
        walk(s, "")
    return out


def step_at(workflow: Workflow, path: str) -> StepSpec:
    """The step of ``workflow`` a run path belongs to (``path`` relative to the root context).

    Patterns open a child context named by the child step's id (``change/implementation``),
    with ``~retry<n>`` / ``~rev<n>`` for a retry or a revision of it; any other segment
    (``turn-2``, ``round-1``, ``d1-test-engineer``) is a sub-step inside the step above it.
    The run service uses this to find a call's ``max_turns`` and its planned estimate.
    """
    node = workflow.root
    for seg in (p for p in path.split("/") if p):
        child = next((c for c in node.children if c.id == seg.split("~", 1)[0]), None)
        if child is None:
            break
        node = child
    return node


def pick_for_task(task: str | None, names: Sequence[str], agents: Mapping[str, AgentSpec]) -> str:
    """The agent an ``auto`` step is planned with: the first whose task kind matches, else the first."""
    return next((n for n in names if agents[n].task_kind == task), names[0])


# -- JSON views (the CLI's --json; an engine route can answer the same) ---------------------


def step_json(s: StepSpec) -> dict[str, Any]:
    """A step tree as plain data: id, type, agents, validated options (defaults filled), children."""
    out: dict[str, Any] = {"id": s.id, "type": s.type, "agents": list(s.agents), "options": dict(s.options)}
    if s.children:
        out["steps"] = [step_json(c) for c in s.children]
    return out


def workflow_json(w: Workflow, agents: Mapping[str, AgentSpec]) -> dict[str, Any]:
    """A workflow with its budgets, step tree and the calls an estimate counts."""
    return {
        "name": w.name, "description": w.description, "source": w.source, "on_error": w.on_error,
        "retries": w.retries, "budget": w.budget.as_json(),
        "agent_budget": {a: b.as_json() for a, b in w.agent_budgets.items()},
        "agents": list(w.agent_names()), "steps": [step_json(s) for s in w.steps],
        "planned_calls": [{"path": c.path, "agent": c.agent, "task": c.task} for c in plan(w, agents)],
    }


def agent_json(a: AgentSpec, source: str) -> dict[str, Any]:
    """An agent as plain data, with where it was defined."""
    return {"name": a.name, "role": a.role, "task": a.task_kind, "tier": a.tier, "artefact": a.artefact,
            "context_pack": a.context_pack, "context_budget": a.context_budget, "prompt": a.system_prompt,
            "source": source}
