"""A job's fields, its states and the transitions between them (docs/jobs.md#states).

::

    queued ──▶ running ──▶ done | failed | cancelled
       │          │
       │          └──▶ cancelling ──▶ cancelled        (cancel asked; the work stops)
       └──▶ cancelled                                  (cancelled before it ran)
    running | queued | cancelling ──▶ interrupted      (the engine stopped or crashed)
    interrupted ──▶ queued                             (resumed at the next start)

``done``, ``failed`` and ``cancelled`` are final; ``interrupted`` is final only for a
kind that cannot resume (or is not registered in this engine).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.audit import format_ts
from core.errors import BadRequest, Conflict

STATES: tuple[str, ...] = ("queued", "running", "cancelling", "done", "failed", "cancelled", "interrupted")
TERMINAL = frozenset({"done", "failed", "cancelled"})
ACTIVE = frozenset({"queued", "running", "cancelling"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "interrupted"}),
    "running": frozenset({"done", "failed", "cancelling", "cancelled", "interrupted"}),
    "cancelling": frozenset({"cancelled", "done", "failed", "interrupted"}),
    "interrupted": frozenset({"queued", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
JOB_ID = re.compile(r"^j-[0-9a-f]{12}$")
MAX_ERROR = 2_000


def new_job_id() -> str:
    """A fresh job id: ``j-`` and 12 hex digits (48 random bits)."""
    return "j-" + secrets.token_hex(6)


def check_job_id(job_id: str) -> str:
    """``job_id`` if it has the shape of a job id, else a 400 naming the expected shape."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise BadRequest(
            f"{str(job_id)[:40]!r} is not a job id: job ids look like j-0123456789ab. "
            "See your jobs with: musubi jobs list",
            field="id",
        )
    return job_id


@dataclass
class Job:
    """One job as the engine holds it in memory (the row of table ``jobs`` plus live progress)."""

    id: str
    kind: str
    tenant: str
    project: str | None
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    done: int = 0
    total: int | None = None
    unit: str = "steps"
    error: str | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_at: datetime | None = None
    result: dict[str, Any] | None = None
    attempts: int = 0
    cancelled_by: str | None = None
    # Live only (not persisted): the rate over this attempt, for rate and ETA.
    rate_since: datetime | None = None
    rate_base: int = 0
    # Live only: what the job waits for now (JobHandle.note), e.g. an index job held at the embedder's switch.
    message: str | None = None

    def move(self, to: str) -> None:
        """Change state, refusing a transition the state machine does not allow."""
        if to not in TRANSITIONS[self.state]:
            raise Conflict(
                f"job {self.id} is {self.state}; it cannot become {to}.",
                code="job_state", state=self.state,
            )
        self.state = to

    # -- rate and ETA ---------------------------------------------------------------------

    def rate(self, now: datetime) -> float | None:
        """Units per second over the current attempt; None until there is something to measure."""
        if self.rate_since is None or self.state not in ("running", "cancelling"):
            return None
        secs = (now - self.rate_since).total_seconds()
        n = self.done - self.rate_base
        return n / secs if secs > 0 and n > 0 else None

    def eta_s(self, now: datetime) -> float | None:
        r = self.rate(now)
        if r is None or self.total is None:
            return None
        return max(self.total - self.done, 0) / r

    # -- storage and the API --------------------------------------------------------------

    def row(self) -> dict[str, Any]:
        """The full row of table ``jobs`` (JSON columns as text)."""
        return {
            "job_id": self.id, "tenant_id": self.tenant, "project": self.project or "", "kind": self.kind,
            "state": self.state, "created_by": self.created_by, "created_at": self.created_at,
            "started_at": self.started_at, "finished_at": self.finished_at, "updated_at": self.updated_at,
            "done": self.done, "total": self.total, "unit": self.unit, "error": self.error,
            "params": _text(self.params), "checkpoint": _text(self.checkpoint), "checkpoint_at": self.checkpoint_at,
            "result": _text(self.result), "attempts": self.attempts, "cancelled_by": self.cancelled_by,
        }

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Job:
        return cls(
            id=r["job_id"], kind=r["kind"], tenant=r["tenant_id"], project=r["project"] or None, state=r["state"],
            created_by=r["created_by"], created_at=r["created_at"], updated_at=r["updated_at"],
            params=_parse(r["params"]) or {}, started_at=r["started_at"], finished_at=r["finished_at"],
            done=int(r["done"]), total=None if r["total"] is None else int(r["total"]), unit=r["unit"],
            error=r["error"], checkpoint=_parse(r["checkpoint"]), checkpoint_at=r["checkpoint_at"],
            result=_parse(r["result"]), attempts=int(r["attempts"]), cancelled_by=r["cancelled_by"],
        )

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The job as the API answers it (docs/api.md#get-v1jobsid)."""
        rate, eta = self.rate(now), self.eta_s(now)
        note = {"message": self.message} if self.message and self.state in ("running", "cancelling") else {}
        return {
            "id": self.id, "kind": self.kind, "tenant": self.tenant, "project": self.project, "state": self.state,
            "created_by": self.created_by, "created_at": format_ts(self.created_at),
            "started_at": _ts(self.started_at), "finished_at": _ts(self.finished_at),
            "updated_at": format_ts(self.updated_at),
            "progress": {
                "done": self.done, "total": self.total, "unit": self.unit,
                "rate": None if rate is None else round(rate, 3),
                "eta_s": None if eta is None else round(eta, 1), **note,
            },
            "error": self.error, "params": self.params, "checkpoint": self.checkpoint,
            "checkpoint_at": _ts(self.checkpoint_at), "result": self.result, "attempts": self.attempts,
            "cancelled_by": self.cancelled_by,
        }


def _ts(v: datetime | None) -> str | None:
    return format_ts(v) if v else None


def _text(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _parse(v: Any) -> Any:
    if v is None or isinstance(v, (dict, list)):
        return v
    return json.loads(v)
