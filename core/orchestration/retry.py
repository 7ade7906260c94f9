"""Retry one step of a run (``POST /v1/runs/{id}/retry``; docs/runs.md#retry-one-step).

A failed, cancelled, stopped or interrupted step runs again **with new calls**, without re-running
the rest: its completed calls (and its children's) become ``superseded`` — still charged, kept,
no longer answered from — so the charge-once keys give each of them a new attempt
(``<run>:<path>:<label>:<attempt + 1>``); every other completed call of the run still answers from
the record, and top-level steps already ``done`` are skipped as on resume.  Steps that never ran
(after a stop) run after it, as on resume.  ``runs.start`` at the run's project (a run's creator
may retry their own); audited as ``run.retry`` with the superseded call keys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.engine.access import Caller
from core.errors import Conflict
from core.orchestration.live import step_not_found
from core.orchestration.ops import commit_attempt, may
from core.storage.base import Update

if TYPE_CHECKING:
    from core.jobs.model import Job
    from core.orchestration.records import RunData
    from core.orchestration.service import RunService

RETRYABLE = frozenset({"failed", "cancelled", "stopped", "interrupted"})
ACTIVE = frozenset({"queued", "running", "waiting"})


async def _with_calls(svc: RunService, d: RunData) -> RunData:
    """A finished run lets its calls go from memory; a retry needs them (which to supersede, which replay)."""
    d = await svc._details(d)
    loader = getattr(svc.r.storage, "runs_load", None)
    if not d.calls and d.run.state in ("done", "cancelled") and loader is not None:
        rows = await svc.r.read(loader, [d.run.id])
        svc._fill({"run_steps": [], "run_calls": rows["run_calls"], "run_artefacts": [], "run_approvals": [],
                   "run_log": []})
    return d


def _subtree(d: RunData, path: str) -> list[Any]:
    return [s for s in d.steps.values() if s.path == path or s.path.startswith(path + "/")]


async def retry(svc: RunService, ctx: Caller, run_id: str, step: str) -> dict[str, Any]:
    d = await _with_calls(svc, svc.get(ctx, run_id))
    run = d.run
    holder: list[Job] = []

    def op() -> dict[str, Any]:
        may(svc, ctx, d, "runs.start")
        st = d.steps.get(step)
        if st is None:
            raise step_not_found(d, step)
        if run.state in ACTIVE:
            raise Conflict(f"run {run.id} is {run.state}; a step can be retried once the run has stopped, failed, "
                           f"been cancelled or finished (cancel it first: musubi runs cancel {run.id}).",
                           code="run_state", state=run.state)
        job = svc.jobs.jobs.get(run.job_id or "")
        if job is not None and job.state in ("queued", "running", "cancelling"):
            raise Conflict(f"run {run.id} is still finishing its last attempt (job {job.id}); try again in a moment.",
                           code="run_state", state=run.state)
        if st.status not in RETRYABLE:
            raise Conflict(f"step {step} of run {run.id} is {st.status}; only a failed, cancelled, stopped or "
                           f"interrupted step can be retried.", code="step_state", state=st.status)
        tree = _subtree(d, step)
        paths = {s.path for s in tree}
        rejected = [a for a in d.approvals.values() if a.step_path in paths and a.state in (
            "rejected", "changes_requested")]
        if rejected:
            raise Conflict(f"step {step} holds gate {rejected[0].gate!r}, answered {rejected[0].state} by "
                           f"{rejected[0].decided_by}; a gate is never asked twice: start a new run.",
                           code="gate_answered", state=rejected[0].state)
        now = svc.r.now()
        superseded = sorted(c.key for c in d.calls.values() if c.step_path in paths and c.outcome == "ok")
        for key in superseded:
            call = d.calls[key]
            call.outcome = "superseded"
            svc.write_call(call, ("outcome",))
        top = d.steps.get(step.split("/", 1)[0])
        touched = list(tree) + ([top] if top is not None and top.path not in paths else [])
        for s in touched:  # the step, its children and its top-level step run again; counters keep what was paid
            s.status, s.reason, s.ended_at, s.output = "pending", None, None, None
        for ap in d.approvals.values():
            gate_step = d.steps.get(ap.step_path)
            if ap.state in ("closed", "timed_out") and (gate_step is None or gate_step.status != "done"):
                # Never answered, and its step will run: asked again with a new deadline (never approved by itself).
                ap.state, ap.asked_at, ap.deadline = "pending", now, now + timedelta(seconds=run.gate_timeout_s)
                svc.r.write(Update("run_approvals", {"state": "pending", "asked_at": now, "deadline": ap.deadline},
                                   {"run_id": run.id, "gate": ap.gate}))
        job = svc.jobs.enqueue(ctx, "run", {"run": run.id}, run.project)
        was = run.state
        run.job_id, run.state, run.stop_code, run.reason, run.finished_at = job.id, "queued", None, None, None
        run.cancel_asked = False
        svc.r.audit(run.tenant, ctx, "run.retry", f"run:{run.id}", details={
            "run": run.id, "step": step, "was": was, "job": job.id, "superseded": superseded})
        svc.log(run, step, "state", f"retry of step {step} asked by {ctx.user}; {len(superseded)} completed call(s) "
                "of it are sent again as new attempts, every other completed call answers from the record")
        svc.save(run, *touched)
        holder.append(job)
        return {"run": run.as_json(now, d.pending_gate()), "step": step, "superseded": superseded}

    return await commit_attempt(svc, ctx, "run.retry", run, holder, op)
