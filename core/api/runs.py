"""The runs API (issue 12): request models, answers and event shapes of ``/v1/runs``.

A *run* is one execution of a workflow (``core/models/workflows.toml``) by the engine's run
service (``core/orchestration/service.py``): a tree of steps, each model call charged once
and audited, approval gates that survive restarts, artefacts (outputs, proposed diffs) that
reach the repository only through ``apply``.  docs/runs.md is the user's page, docs/api.md
lists the routes.

Light like :mod:`core.api.models` (msgspec only): the CLI and the TUI import it for the
answer types.

Events on ``GET /v1/events`` (``types=run.state,run.step,...``), all with ``type``,
``tenant``, ``run`` (the run id) and ``ts`` (when the engine published it, for lag):

- ``run.state``: :class:`RunEvent` — the run's summary after each state change;
- ``run.step``: :class:`StepEvent` — one step's row after it changed;
- ``run.output``: :class:`OutputEvent` — streamed model text of one call, coalesced
  (at most one event per run every :data:`OUTPUT_INTERVAL_S`, carrying every delta since), with
  the ``offset`` of its first character in the step's stream (``GET /v1/runs/{id}/output``
  answers the same stream's tail, so a client joining late splices the two exactly);
- ``run.call``: :class:`CallEvent` — one model call finished (no text);
- ``run.gate``: :class:`GateEvent` — an approval gate was asked or answered;
- ``run.note``: :class:`NoteEvent` — a progress line (also in ``runs logs``).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from core import limits
from core.api.models import MAX_NAME, Number, Request, count, dollars, flag, text
from core.errors import BadRequest

RUN_ID = re.compile(r"^r-[0-9a-f]{12}$")
RUN_STATES: tuple[str, ...] = (
    "queued", "running", "waiting", "stopped", "interrupted", "done", "failed", "cancelled",
)
FINAL_STATES = frozenset({"done", "failed", "cancelled"})
STEP_STATES: tuple[str, ...] = (
    "pending", "running", "waiting", "done", "failed", "stopped", "rejected", "interrupted", "cancelled",
)
EVENT_TYPES: tuple[str, ...] = ("run.state", "run.step", "run.output", "run.call", "run.gate", "run.note")
OUTPUT_INTERVAL_S = 0.1  # run.output coalescing: at most ten events a second per run
MAX_FEATURE = 20_000  # characters of --feature
MAX_COMMENT = limits.MAX_REASON_LEN
LOGS_LIMIT = limits.Range(1, 10_000, "lines")
MAX_STEP_PATH = 512  # characters of a step path ("2/1/3")
OUTPUT_TAIL = 64_000  # characters of a running step's stream the engine keeps (and the output route answers)


def check_run_id(v: object, field: str = "id") -> str:
    """``v`` if it has the shape of a run id, else a 400 naming the expected shape."""
    if not isinstance(v, str) or not RUN_ID.match(v):
        raise BadRequest(
            f"{str(v)[:40]!r} is not a run id: run ids look like r-0123456789ab. See your runs with: musubi runs list",
            field=field,
        )
    return v


def _run_id(v: object, field: str) -> str:
    return check_run_id(v, field)


def _opt(check: Any) -> Any:
    """``check`` for a field that may be left out (``None`` stays ``None``)."""

    def inner(v: object, field: str) -> Any:
        return None if v is None or v == "" else check(v, field)

    return inner


# -- requests -----------------------------------------------------------------------------------


class RunStart(Request):
    """``POST /v1/runs``: run ``workflow`` on ``feature``; budgets and caps are optional (engine defaults)."""

    workflow: Any = None
    feature: Any = None
    model: Any = None  # a registry model id to use for every call (must be allowed); else the router picks
    budget_tokens: Number = None  # per run
    budget_usd: Number = None  # per run, dollars
    max_turns: Number = None  # model calls per run
    max_step_turns: Number = None  # model calls per step
    gate_timeout_s: Number = None  # how long an approval gate waits before failing closed
    CHECKS = {
        "workflow": text(MAX_NAME, required=True),
        "feature": text(MAX_FEATURE, required=True),
        "model": text(limits.MAX_MODEL_LEN),
        "budget_tokens": _opt(count(limits.RUN_BUDGET_TOKENS)),
        "budget_usd": _opt(dollars(limits.RUN_BUDGET_COST)),
        "max_turns": _opt(count(limits.RUN_TURNS)),
        "max_step_turns": _opt(count(limits.RUN_TURNS)),
        "gate_timeout_s": _opt(count(limits.GATE_TIMEOUT_S)),
    }
    RENAME = {"budget_usd": "budget_micros"}


class RunsQuery(Request):
    """``GET /v1/runs``: ``state`` (one or several, comma-separated) and ``limit`` in the query."""

    state: str | None = None
    limit: Number = None
    CHECKS = {
        "state": lambda v, f: limits.text(v or None, f, 200),
        "limit": lambda v, f: limits.count(50 if v is None or v == "" else v, f, limits.JOBS_LIMIT),
    }


class RunPath(Request):
    """A route on one run: ``{id}`` in the path (``r-`` and 12 hex digits)."""

    id: str
    CHECKS = {"id": _run_id}


class RunResume(Request):
    """``POST /v1/runs/{id}/resume``: continue a stopped or interrupted run, optionally with raised limits."""

    id: str
    budget_tokens: Number = None
    budget_usd: Number = None
    max_turns: Number = None
    max_step_turns: Number = None
    CHECKS = {
        "id": _run_id,
        "budget_tokens": _opt(count(limits.RUN_BUDGET_TOKENS)),
        "budget_usd": _opt(dollars(limits.RUN_BUDGET_COST)),
        "max_turns": _opt(count(limits.RUN_TURNS)),
        "max_step_turns": _opt(count(limits.RUN_TURNS)),
    }
    RENAME = {"budget_usd": "budget_micros"}


class RunDecide(Request):
    """``POST /v1/runs/{id}/approve|reject|request_changes``: answer the run's pending gate.

    ``gate`` names it (left out: the run's one pending gate); ``shown_sha256`` is the hash of
    what the deciding person saw (the answer of ``runs show``), refused when the gate's content
    changed since (left out: the engine records the gate's own content hash).
    """

    id: str
    gate: Any = None
    comment: Any = None
    shown_sha256: Any = None
    CHECKS = {
        "id": _run_id,
        "gate": text(MAX_NAME),
        "comment": text(MAX_COMMENT),
        "shown_sha256": text(64),
    }


class RunApply(Request):
    """``POST /v1/runs/{id}/apply``: write an approved diff artefact into the project (``git apply`` semantics)."""

    id: str
    artefact: Any = None  # the artefact id (left out: the run's one proposed diff)
    CHECKS = {"id": _run_id, "artefact": text(MAX_NAME)}


class RunLogsQuery(Request):
    """``GET /v1/runs/{id}/logs``: the run's log lines after ``after`` (a line number), at most ``limit``."""

    id: str
    after: Number = None
    limit: Number = None
    CHECKS = {
        "id": _run_id,
        "after": lambda v, f: limits.count(0 if v is None or v == "" else v, f, limits.Range(0, 10**12, "lines")),
        "limit": lambda v, f: limits.count(1000 if v is None or v == "" else v, f, LOGS_LIMIT),
    }


class RunStepQuery(Request):
    """``GET /v1/runs/{id}/output?step=PATH``: one step's output so far (``step``: its path, ``2/1``)."""

    id: str
    step: Any = None
    CHECKS = {"id": _run_id, "step": text(MAX_STEP_PATH, required=True)}


class RunRetry(Request):
    """``POST /v1/runs/{id}/retry``: run one failed, cancelled, stopped or interrupted step again (new calls)."""

    id: str
    step: Any = None
    CHECKS = {"id": _run_id, "step": text(MAX_STEP_PATH, required=True)}


class RunSettingsSet(Request):
    """``PUT /v1/run-settings``: the tenant's run settings (``tenant.manage``)."""

    audit_text: Any = None  # prompt and output text in run.call audit events (redacted)
    CHECKS = {"audit_text": flag}


# -- answers ------------------------------------------------------------------------------------


class Amount(TypedDict):
    tokens: int | None
    cost_usd: str | None  # exact dollars, 6 decimals


class RunLimits(TypedDict):
    budget_tokens: int | None
    budget_usd: str | None
    max_turns: int
    max_step_turns: int
    gate_timeout_s: int


class Run(TypedDict):
    """A run's summary: ``GET /v1/runs`` rows, ``run.state`` events."""

    id: str
    tenant: str
    project: str | None
    workflow: str
    feature: str  # the first 200 characters
    state: str  # RUN_STATES
    stop_code: str | None  # quota | budget | turn_cap | stuck | cancelled | gate_timeout | rejected | error
    reason: str | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    elapsed_s: float | None
    model: str | None  # the --model override, if any
    tokens: int  # input + output, as the providers reported
    cost_usd: str
    turns: int  # model calls sent (replays not counted)
    estimate: Amount  # the cost estimator's expected total for the workflow
    limits: RunLimits
    pending_gate: str | None
    job: str | None  # the job id of its current (or last) attempt
    attempts: int


class RunStep(TypedDict):
    path: str  # "1", "2/1", ...
    parent: str | None
    title: str
    type: str  # the pattern
    agent: str | None
    status: str  # STEP_STATES
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: str
    turns: int
    estimate: Amount
    budget: Amount  # the agent's budget, if any
    latency_ms: float | None  # of its last call
    started_at: str | None
    ended_at: str | None
    elapsed_s: float | None
    reason: str | None


class RunApproval(TypedDict):
    gate: str
    step: str
    state: str  # pending | approved | rejected | changes_requested | timed_out | closed (the run ended)
    artefact: str | None
    shown_sha256: str  # the hash of what the gate showed
    shown: str  # what it showed (the artefact's content)
    asked_at: str
    deadline: str | None
    decision: str | None
    decided_by: str | None
    decided_at: str | None
    comment: str | None


class RunArtefact(TypedDict):
    id: str
    step: str
    kind: str  # text | requirements | design | tasks | diff | review | tests
    name: str
    sha256: str
    size: int
    state: str  # proposed | approved | applied | refused
    content: str
    applied_at: str | None
    applied_by: str | None
    detail: str | None  # why it was refused, or the files it wrote


class RunShown(Run):
    steps: list[RunStep]
    approvals: list[RunApproval]
    artefacts: list[RunArtefact]


class RunDecided(TypedDict):
    run: Run
    gate: str
    decision: str
    by: str


class RunApplied(TypedDict):
    run: str
    artefact: str
    state: str  # applied
    files: list[str]  # paths written, relative to the project root


class RunOutput(TypedDict):
    """One step's output so far: the live tail of its stream while it runs, else what was recorded."""

    run: str
    step: str
    status: str  # the step's STEP_STATES
    source: str  # live (streamed, this engine's memory) | record (completed calls / the step's output) | none
    text: str  # at most OUTPUT_TAIL characters: the tail
    offset: int  # where ``text`` starts in the step's stream (live: as run.output events count)
    end: int  # characters streamed (live) or recorded in all
    truncated: bool  # text is the tail of something longer


class RunRetried(TypedDict):
    run: Run
    step: str
    superseded: list[str]  # keys of the step's completed calls that its new attempt replaces (still charged)


class RunSettings(TypedDict):
    tenant: str
    audit_text: bool
    updated_at: str | None
    updated_by: str | None


class ProviderLatency(TypedDict):
    """``GET /v1/providers/stats`` rows: the caller's tenant's model calls, per provider and model."""

    tenant: str
    provider: str
    model: str
    count: int  # calls recorded since the engine started (the percentiles cover the last 512)
    p50_ms: float
    p95_ms: float
    p99_ms: float


class RunLogLine(TypedDict):
    n: int
    ts: str
    step: str | None
    kind: str  # note | state | step | call | gate | apply
    text: str


class RunLogs(TypedDict):
    run: str
    lines: list[RunLogLine]
    next_after: int


# -- events -------------------------------------------------------------------------------------


class RunEvent(TypedDict):
    type: str  # run.state
    tenant: str
    ts: str
    run: Run


class StepEvent(TypedDict):
    type: str  # run.step
    tenant: str
    ts: str
    run: str
    step: RunStep


class OutputEvent(TypedDict):
    type: str  # run.output
    tenant: str
    ts: str
    run: str
    step: str
    agent: str
    text: str  # the deltas since the last run.output of this run and step
    offset: int  # where ``text`` starts in the step's stream (characters)


class CallEvent(TypedDict):
    type: str  # run.call
    tenant: str
    ts: str
    run: str
    step: str
    agent: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: str
    latency_ms: float
    outcome: str  # ok | failed | cancelled
    replayed: bool


class GateEvent(TypedDict):
    type: str  # run.gate
    tenant: str
    ts: str
    run: str
    approval: RunApproval


class NoteEvent(TypedDict):
    type: str  # run.note
    tenant: str
    ts: str
    run: str
    step: str | None
    text: str


__all__ = [
    "EVENT_TYPES", "FINAL_STATES", "RUN_STATES", "STEP_STATES", "RunApply", "RunDecide", "RunLogsQuery",
    "RunPath", "RunResume", "RunRetry", "RunSettingsSet", "RunStart", "RunStepQuery", "RunsQuery", "check_run_id",
]
