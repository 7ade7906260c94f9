"""What the run service holds of each run, as rows of migration 006 and as API answers.

One class per table (``runs``, ``run_steps``, ``run_calls``, ``run_artefacts``,
``run_approvals``): ``row()`` is the full row for an :class:`~core.storage.base.Insert`,
``from_row`` reads it back at start, ``as_json`` is the answer shape of
:mod:`core.api.runs`.  No I/O here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from core.audit import format_ts
from core.quotas import micros_to_usd
from core.storage.rows import Row, new_id
from core.storage.rows import ts as _ts

FEATURE_SHOWN = 200
ARTEFACT_SHOWN = 256 * 1024  # characters of an artefact in an answer (the table has all of it)


def new_run_id() -> str:
    return new_id("r")


def new_artefact_id() -> str:
    return new_id("a")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _usd(v: int | None) -> str | None:
    return None if v is None else micros_to_usd(v)


def _elapsed(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    if start is None:
        return None
    return round(((end or now) - start).total_seconds(), 3)


@dataclass
class RunRecord(Row):
    """A row of ``runs`` (plus what is only live)."""

    COLUMNS: ClassVar[dict[str, str]] = {"id": "run_id", "tenant": "tenant_id"}
    LIVE: ClassVar[frozenset[str]] = frozenset({"cancel_asked", "log_n"})

    id: str
    tenant: str
    project: str | None
    workflow: str
    feature: str
    model: str | None
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    max_turns: int
    max_step_turns: int
    gate_timeout_s: int
    budget_tokens: int | None = None
    budget_micros: int | None = None
    stop_code: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    job_id: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    turns: int = 0
    est_tokens: int | None = None
    est_cost_micros: int | None = None
    # live only
    cancel_asked: bool = False
    log_n: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def row(self) -> dict[str, Any]:
        return {**super().row(), "project": self.project or ""}  # '' when started outside a project

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> RunRecord:
        rec: RunRecord = super().from_row(r)
        rec.project = rec.project or None
        return rec

    def as_json(self, now: datetime, pending_gate: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "tenant": self.tenant, "project": self.project, "workflow": self.workflow,
            "feature": self.feature[:FEATURE_SHOWN], "state": self.state, "stop_code": self.stop_code,
            "reason": self.reason, "created_by": self.created_by, "created_at": format_ts(self.created_at),
            "started_at": _ts(self.started_at), "finished_at": _ts(self.finished_at),
            "updated_at": format_ts(self.updated_at), "elapsed_s": _elapsed(self.started_at, self.finished_at, now),
            "model": self.model, "tokens": self.tokens, "cost_usd": micros_to_usd(self.cost_micros),
            "turns": self.turns, "estimate": {"tokens": self.est_tokens, "cost_usd": _usd(self.est_cost_micros)},
            "limits": {
                "budget_tokens": self.budget_tokens, "budget_usd": _usd(self.budget_micros),
                "max_turns": self.max_turns, "max_step_turns": self.max_step_turns,
                "gate_timeout_s": self.gate_timeout_s,
            },
            "pending_gate": pending_gate, "job": self.job_id, "attempts": self.attempts,
        }


@dataclass
class StepRecord(Row):
    run_id: str
    path: str
    parent: str | None
    ord: int
    title: str
    type: str
    agent: str | None = None
    status: str = "pending"
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    turns: int = 0
    est_tokens: int | None = None
    est_cost_micros: int | None = None
    budget_tokens: int | None = None
    budget_micros: int | None = None
    latency_ms: float | None = None
    output: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "path": self.path, "parent": self.parent, "title": self.title, "type": self.type, "agent": self.agent,
            "status": self.status, "model": self.model, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cost_usd": micros_to_usd(self.cost_micros), "turns": self.turns,
            "estimate": {"tokens": self.est_tokens, "cost_usd": _usd(self.est_cost_micros)},
            "budget": {"tokens": self.budget_tokens, "cost_usd": _usd(self.budget_micros)},
            "latency_ms": self.latency_ms, "started_at": _ts(self.started_at), "ended_at": _ts(self.ended_at),
            "elapsed_s": _elapsed(self.started_at, self.ended_at, now), "reason": self.reason,
        }


@dataclass
class CallRecord(Row):
    """One attempt of one model call; ``outcome == "ok"`` is the record a resume answers from."""

    COLUMNS: ClassVar[dict[str, str]] = {"key": "call_key", "tenant": "tenant_id"}

    key: str
    run_id: str
    tenant: str
    step_path: str
    label: str
    attempt: int
    agent: str
    model: str
    provider: str | None
    outcome: str
    sent_at: datetime
    est_tokens: int = 0
    est_cost_micros: int = 0
    response: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    latency_ms: float | None = None
    stop_reason: str | None = None
    request_id: str | None = None
    reservation_id: str | None = None
    ledger_entry: int | None = None
    error: str | None = None
    ended_at: datetime | None = None


@dataclass
class ArtefactRecord(Row):
    COLUMNS: ClassVar[dict[str, str]] = {"id": "artefact_id"}

    id: str
    run_id: str
    step_path: str
    kind: str
    name: str
    content: str
    sha256: str
    state: str
    created_at: datetime
    applied_at: datetime | None = None
    applied_by: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "step": self.step_path, "kind": self.kind, "name": self.name, "sha256": self.sha256,
            "size": len(self.content.encode("utf-8")), "state": self.state, "content": self.content[:ARTEFACT_SHOWN],
            "applied_at": _ts(self.applied_at), "applied_by": self.applied_by, "detail": self.detail,
        }


@dataclass
class ApprovalRecord(Row):
    run_id: str
    gate: str
    step_path: str
    artefact_id: str | None
    shown_sha256: str
    shown: str
    state: str
    asked_at: datetime
    deadline: datetime | None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None

    @property
    def decision(self) -> str | None:
        return {"approved": "approve", "rejected": "reject", "changes_requested": "request_changes"}.get(self.state)

    def as_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate, "step": self.step_path, "state": self.state, "artefact": self.artefact_id,
            "shown_sha256": self.shown_sha256, "shown": self.shown[:ARTEFACT_SHOWN],
            "asked_at": format_ts(self.asked_at),
            "deadline": _ts(self.deadline), "decision": self.decision, "decided_by": self.decided_by,
            "decided_at": _ts(self.decided_at), "comment": self.comment,
        }


CHARGED = frozenset({"ok", "superseded"})  # completed calls (a retried step's old ones are superseded)


@dataclass
class RunData:
    """Everything the service keeps of one run."""

    run: RunRecord
    steps: dict[str, StepRecord] = field(default_factory=dict)
    calls: dict[str, CallRecord] = field(default_factory=dict)  # by call key
    artefacts: dict[str, ArtefactRecord] = field(default_factory=dict)
    approvals: dict[str, ApprovalRecord] = field(default_factory=dict)
    # The attempts of each (step path, label) and each agent's completed usage, so a call's look-ups
    # and budget checks cost the same at the 1st and the 200th turn.
    _labels: dict[tuple[str, str], list[CallRecord]] = field(default_factory=dict, repr=False)
    _agent_ok: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def add_call(self, call: CallRecord) -> None:
        """Hold ``call`` (always through here: it keeps the indexes)."""
        same = self._labels.setdefault((call.step_path, call.label), [])
        old = self.calls.get(call.key)
        if old is not None:  # read again from storage: the same attempt, not another
            same[:] = [c for c in same if c.key != call.key]
            if old.outcome in CHARGED:
                self._count(old, -1)
        self.calls[call.key] = call
        same.append(call)
        if call.outcome in CHARGED:
            self._count(call, 1)

    def call_ok(self, call: CallRecord) -> None:
        """``call`` (held) just completed: count its usage for its agent."""
        self._count(call, 1)

    def _count(self, call: CallRecord, sign: int) -> None:
        t, c = self._agent_ok.get(call.agent, (0, 0))
        self._agent_ok[call.agent] = (t + sign * (call.input_tokens + call.output_tokens),
                                      c + sign * call.cost_micros)

    def agent_spent(self, agent: str) -> tuple[int, int]:
        """Tokens and micro-dollars of ``agent``'s completed calls in this run (superseded ones too: paid)."""
        return self._agent_ok.get(agent, (0, 0))

    def clear_calls(self) -> None:
        self.calls.clear()
        self._labels.clear()
        self._agent_ok.clear()

    def completed(self, path: str, label: str) -> CallRecord | None:
        """The completed call of ``label`` in step ``path``, if any (what a resume answers from; a call a
        retry superseded is not: the retry sends it again as a new attempt)."""
        return next((c for c in self._labels.get((path, label), ()) if c.outcome == "ok"), None)

    def attempts(self, path: str, label: str) -> int:
        return len(self._labels.get((path, label), ()))

    def pending_gate(self) -> str | None:
        return next((a.gate for a in self.approvals.values() if a.state == "pending"), None)
