"""``GET /v1/jobs`` for the TUI's fake engine (issue 19, the Dashboard's fine-tuning line): the engine's shapes.

No jobs unless a test adds some (``FakeJobs.jobs``); :func:`job` builds one as core/jobs/model.py's
``Job.as_json`` answers it and :func:`event` the ``job.state`` / ``job.progress`` event carrying it.
The filters and their refusals are the engine's own (``JobsQuery``; core/jobs/service.py ``list``).
"""

from __future__ import annotations

from typing import Any

from core.api.models import JobsQuery, parse
from core.errors import BadRequest, NotFound
from core.jobs.model import STATES

Json = dict[str, Any]
TS = "2026-01-15T14:30:00.000000Z"


def job(jid: str, kind: str, state: str, *, done: int = 0, total: int | None = None, unit: str = "stages",
        tune: str | None = None, error: str | None = None, result: Json | None = None,
        created_at: str = TS) -> Json:
    """A job as ``GET /v1/jobs`` lists it (``tune``: the fine-tuning id a ``tune.provider`` job carries)."""
    params: Json = {"tune": tune, "poll_ms": 30000} if tune else {"project": "webshop"}
    ended = state in ("done", "failed", "cancelled")
    return {"id": jid, "kind": kind, "tenant": "acme", "project": None, "state": state, "created_by": "alice",
            "created_at": created_at, "started_at": TS if state != "queued" else None,
            "finished_at": TS if ended else None, "updated_at": TS,
            "progress": {"done": done, "total": total, "unit": unit, "rate": None, "eta_s": None},
            "error": error, "params": params, "checkpoint": None, "checkpoint_at": None, "result": result,
            "attempts": 1 if state != "queued" else 0, "cancelled_by": None}


def event(kind: str, j: Json) -> Json:
    """A ``job.state`` or ``job.progress`` event as the engine's stream carries it."""
    return {"type": kind, "tenant": "acme", "ts": TS, "job": j}


class FakeJobs:
    """The tenant's jobs, newest first on a list."""

    def __init__(self) -> None:
        self.jobs: list[Json] = []

    def answer(self, method: str, path: str, query: Json | None) -> Any:
        if method != "GET" or path != "/v1/jobs":
            raise NotFound(f"fake engine has no route {method} {path}")
        req = parse(JobsQuery, {k: v for k, v in (query or {}).items() if v is not None})
        states = set(req.state.split(",")) if req.state else None
        if states and not states <= set(STATES):
            bad = ", ".join(sorted(states - set(STATES)))
            raise BadRequest(f"unknown job state {bad}; states are: {', '.join(STATES)}.", field="state")
        rows = sorted(self.jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)
        return [j for j in rows if (states is None or j["state"] in states) and req.kind in (None, j["kind"])
                ][: int(req.limit or 50)]
