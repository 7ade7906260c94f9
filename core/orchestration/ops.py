"""The run service's write operations: start, cancel, resume, decide (approve / reject / request
changes) and apply.  Bound as methods of :class:`core.orchestration.service.RunService`.

Each checks access first (``runs.start``, ``runs.cancel`` or ``runs.approve`` at the run's
project), raises before it writes, and commits its rows, its audit event and — for start and
resume — the run's job in one group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.api.runs import FINAL_STATES, MAX_FEATURE
from core.engine.access import Caller
from core.errors import BadRequest, Conflict, MusubiError, NotFound
from core.orchestration import gitapply
from core.orchestration.catalog import load_plan
from core.orchestration.records import RunData, RunRecord, StepRecord, new_run_id, sha256
from core.orchestration.runloop import close_gates
from core.quotas import micros_to_usd
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.jobs.model import Job
    from core.orchestration.service import RunService

DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}
CANCEL_WAIT_S = 30.0  # the longest a cancel waits for the attempt it stopped to record its end


def _estimate(self: RunService, tenant: str, plan: Any, feature: str, model: str | None,
              allowed: set[str] | None) -> list[tuple[int | None, int | None]]:
    """Per top-level step: the cost estimator's expected (tokens, micro-dollars) for its agent's call,
    on the model the router would pick (or ``model``): ``estimate_model`` of core/models/estimate.py
    with the feature as the material, so a run reports estimated vs actual the way
    ``musubi cost estimate`` prices it."""
    from core.models.estimate import Document, Step, document_counts, estimate_model
    from core.models.router import route
    from core.models.tokens import count_exact

    if self.registry is None:
        return [(None, None) for _ in plan.steps]
    reg = self.registry(tenant)
    doc = Document("feature", feature)
    out: list[tuple[int | None, int | None]] = []
    for spec in plan.steps:
        agent = plan.agents.get(spec.agents[0]) if spec.agents else None
        if agent is None:
            out.append((None, None))
            continue
        try:
            m = reg.get(model) if model else route(reg, agent.task_kind, count_exact(feature) + count_exact(
                agent.system_prompt), allowed=allowed).choice.model
            row = estimate_model(reg, m, [doc], [document_counts(doc, [m.tokenizer])],
                                 [Step(agent.task_kind, agent.system_prompt)])
        except MusubiError:
            out.append((None, None))
            continue
        out.append((row["input_tokens"]["expected"] + row["output_tokens"]["expected"],
                    row["cost_micros"]["expected"]))
    return out


async def start(self: RunService, ctx: Caller, workflow: str, feature: str, model: str | None = None,
                budget_tokens: int | None = None, budget_micros: int | None = None, max_turns: int | None = None,
                max_step_turns: int | None = None, gate_timeout_s: int | None = None) -> dict[str, Any]:
    """Queue a run of ``workflow`` (audited ``run.start``; never the feature text) and its first attempt."""
    # Permission first, so a caller who may not start runs learns nothing else (and the refusal is audited).
    await self.r.run(ctx, "run.start", f"workflow:{workflow}",
                     lambda: self.r.require(ctx, "runs.start", project=ctx.project))
    if not feature.strip():
        raise BadRequest("--feature is empty: say what the run should build.", field="feature")
    if len(feature) > MAX_FEATURE:
        raise BadRequest(f"feature is longer than {MAX_FEATURE:,} characters.", field="feature")
    project_root = self.r.state.projects.get(ctx.tenant, {}).get(ctx.project or "", {}).get("path")
    plan = load_plan(workflow, project_root, self.r.paths.home)  # 404 naming the known workflows
    self.check_providers(ctx.tenant)
    allowed = await self.allowed(ctx.tenant) if self.allowed is not None else None
    if model is not None and self.registry is not None:
        spec = self.registry(ctx.tenant).get(model)  # 400 naming close matches when unknown
        if allowed is not None and spec.id not in allowed:
            raise BadRequest(f"model {spec.id} is not allowed in tenant {ctx.tenant!r}; allowed: "
                             f"{', '.join(sorted(allowed))}. Leave --model out to let the router pick.", field="model")
        model = spec.id
    # In a thread: the first count loads the tokenizer's ranks (seconds), which must not stall the engine.
    est = await asyncio.to_thread(_estimate, self, ctx.tenant, plan, feature, model, allowed)
    holder: list[tuple[RunData, Job]] = []

    def op() -> dict[str, Any]:
        self.r.require(ctx, "runs.start", project=ctx.project)
        now = self.r.now()
        b = plan.budget
        run = RunRecord(
            new_run_id(), ctx.tenant, ctx.project, plan.name, feature, model, "queued", ctx.user, now, now,
            max_turns or b.turns or 200, max_step_turns or 25, gate_timeout_s or 24 * 3600,
            budget_tokens if budget_tokens is not None else b.tokens,
            budget_micros if budget_micros is not None else b.cost_micros,
        )
        if all(t is not None for t, _ in est):
            run.est_tokens = sum(t or 0 for t, _ in est)
            run.est_cost_micros = sum(c or 0 for _, c in est)
        d = RunData(run)
        for i, (spec, (t, c)) in enumerate(zip(plan.steps, est, strict=True), 1):
            agent = spec.agents[0] if spec.agents else None
            ab = plan.agent_budgets.get(agent) if agent else None
            st = StepRecord(run.id, str(i), None, i, spec.id, spec.type, agent, est_tokens=t, est_cost_micros=c,
                            budget_tokens=ab.tokens if ab else None, budget_micros=ab.cost_micros if ab else None)
            d.steps[st.path] = st
        job = self.jobs.enqueue(ctx, "run", {"run": run.id}, ctx.project)
        run.job_id = job.id
        self.r.write(Insert("runs", run.row()))
        self.write_new(*d.steps.values())
        self.r.audit(ctx.tenant, ctx, "run.start", f"run:{run.id}", details={
            "run": run.id, "workflow": plan.name, "project": ctx.project, "model": model, "job": job.id,
            "feature_chars": len(feature), "feature_sha256": sha256(feature),
            "budget_tokens": run.budget_tokens,
            "budget_usd": micros_to_usd(run.budget_micros) if run.budget_micros is not None else None,
            "max_turns": run.max_turns, "max_step_turns": run.max_step_turns,
        })
        self.log(run, None, "state", f"queued: workflow {plan.name}, {len(plan.steps)} step(s)")
        self.data[run.id] = d
        holder.append((d, job))
        return run.as_json(now)

    try:
        answer = await self.r.run(ctx, "run.start", f"workflow:{workflow}", op)
    except BaseException:
        for d, job in holder:  # never committed: forget it
            self.data.pop(d.run.id, None)
            self.jobs.forget(job.id)
        raise
    d, job = holder[0]
    self._announce(d.run, tuple(d.steps.values()))
    self.jobs.enqueued(job)
    return answer


def may(self: RunService, ctx: Caller, d: RunData, perm: str) -> None:
    """``perm`` at the run's project; its creator may always cancel and resume their own run."""
    if not (perm in ("runs.cancel", "runs.start") and d.run.created_by == ctx.user):
        self.r.require(ctx, perm, project=d.run.project)
    else:
        self.r.require(ctx, "runs.start", project=d.run.project)


async def cancel(self: RunService, ctx: Caller, run_id: str) -> dict[str, Any]:
    """Cancel a run: a running one stops at once (an answered call is still charged); others end now."""
    d = self.get(ctx, run_id)
    run = d.run
    job_id = run.job_id
    running = job_id is not None and job_id in self.jobs._tasks

    def op() -> dict[str, Any]:
        may(self, ctx, d, "runs.cancel")
        if run.state in FINAL_STATES:
            raise Conflict(f"run {run.id} is already {run.state}; there is nothing to cancel.", code="run_finished",
                           state=run.state)
        run.cancel_asked = True
        self.r.audit(run.tenant, ctx, "run.cancel", f"run:{run.id}", details={"run": run.id, "state": run.state})
        if not running:
            now = self.r.now()
            run.state, run.stop_code, run.finished_at = "cancelled", "cancelled", now
            run.reason = f"cancelled by {ctx.user}"
            close_gates(self, d)
            for st in d.steps.values():
                if st.status in ("pending", "running", "waiting", "interrupted"):
                    st.status = "cancelled"
                    self.save(run, st)
            self.log(run, None, "state", f"cancelled by {ctx.user}")
            self.save(run)
        else:
            run.reason = ctx.user
        return run.as_json(self.r.now(), d.pending_gate())

    answer = await self.r.run(ctx, "run.cancel", f"run:{run.id}", op)
    job = self.jobs.jobs.get(run.job_id or "")
    if job is not None and job.state not in ("done", "failed", "cancelled"):
        owner = Caller(job.created_by, job.created_by, job.tenant, job.project)
        with contextlib.suppress(MusubiError):  # it ended meanwhile
            await self.jobs.cancel(owner, job.id)  # a running attempt stops at its next await
    if running:
        # Answer with the run as it ended: the attempt records its end (finish) before its job's task ends.
        task = self.jobs._tasks.get(job_id or "")
        if task is not None:
            await asyncio.wait({task}, timeout=CANCEL_WAIT_S)  # a hang guard: the task is never cancelled by it
        answer = run.as_json(self.r.now(), d.pending_gate())
    return answer


async def resume(self: RunService, ctx: Caller, run_id: str, budget_tokens: int | None = None,
                 budget_micros: int | None = None, max_turns: int | None = None,
                 max_step_turns: int | None = None) -> dict[str, Any]:
    """Continue a stopped, failed or interrupted run from its last completed step (limits may be raised)."""
    d = await self._details(self.get(ctx, run_id))
    run = d.run
    holder: list[Job] = []

    def op() -> dict[str, Any]:
        may(self, ctx, d, "runs.start")
        if run.state not in ("stopped", "failed", "interrupted"):
            raise Conflict(f"run {run.id} is {run.state}; only a stopped, failed or interrupted run can be resumed.",
                           code="run_state", state=run.state)
        if run.stop_code in ("stuck", "rejected", "cancelled"):
            raise Conflict(f"run {run.id} ended with {run.stop_code} ({run.reason}); it cannot be resumed: start a "
                           "new run.", code="run_not_resumable", state=run.state)
        job = self.jobs.jobs.get(run.job_id or "")
        if job is not None and job.state in ("queued", "running", "cancelling"):
            raise Conflict(f"run {run.id} is already resuming (job {job.id}).", code="run_state", state=run.state)
        changed = {}
        for name, v in (("budget_tokens", budget_tokens), ("budget_micros", budget_micros),
                        ("max_turns", max_turns), ("max_step_turns", max_step_turns)):
            if v is not None:
                changed[name] = v
                setattr(run, name, v)
        now = self.r.now()
        for ap in d.approvals.values():
            if ap.state == "timed_out":  # asked again, with a new deadline; never approved by itself
                ap.state, ap.asked_at, ap.deadline = "pending", now, now + timedelta(seconds=run.gate_timeout_s)
                self.r.write(Update("run_approvals", {"state": "pending", "asked_at": now, "deadline": ap.deadline},
                                    {"run_id": run.id, "gate": ap.gate}))
        job = self.jobs.enqueue(ctx, "run", {"run": run.id}, run.project)
        run.job_id, run.state, run.stop_code, run.reason, run.finished_at = job.id, "queued", None, None, None
        self.r.audit(run.tenant, ctx, "run.resume", f"run:{run.id}", details={"run": run.id, "job": job.id,
                                                                                 **{k: v for k, v in changed.items()}})
        self.log(run, None, "state", f"resume asked by {ctx.user}" + (f" ({changed})" if changed else ""))
        self.save(run)
        holder.append(job)
        return run.as_json(now, d.pending_gate())

    return await commit_attempt(self, ctx, "run.resume", run, holder, op)


async def commit_attempt(self: RunService, ctx: Caller, action: str, run: RunRecord, holder: list[Job],
                         op: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``op`` (which queues a new attempt's job into ``holder``); the job starts once committed, and is
    forgotten when the operation is refused or its commit fails."""
    try:
        answer = await self.r.run(ctx, action, f"run:{run.id}", op)
    except BaseException:
        for job in holder:
            self.jobs.forget(job.id)
        raise
    self.jobs.enqueued(holder[0])
    return answer


async def decide(self: RunService, ctx: Caller, run_id: str, decision: str, gate: str | None = None,
                 comment: str | None = None, shown_sha256: str | None = None,
                 also: Callable[[], None] | None = None) -> dict[str, Any]:
    """Answer a pending gate (``runs.approve``); the decision, who, and the hash of what they saw are audited.

    ``also`` writes more in the decision's own group commit, once the gate is known to accept it (the
    inbound replay guard: a crash keeps the decision and the request's signature together, or neither).
    """
    if decision not in DECISIONS:
        raise BadRequest(f"unknown decision {decision!r}: approve, reject or request_changes.", field="decision")
    d = await self._details(self.get(ctx, run_id))
    run = d.run
    name = gate or d.pending_gate()
    ap = d.approvals.get(name or "")
    if ap is None:
        raise NotFound(f"run {run.id} has no {'gate ' + repr(gate) if gate else 'pending approval gate'}. See it "
                       f"with: musubi runs show {run.id}", code="gate_not_found")

    def op() -> dict[str, Any]:
        self.r.require(ctx, "runs.approve", project=run.project)
        if ap.state != "pending":
            how = (f"closed: the run is {run.state}" if ap.state == "closed" else "timed out (failed closed)"
                   if ap.state == "timed_out" else f"{ap.state} by {ap.decided_by}")
            raise Conflict(f"gate {ap.gate!r} of run {run.id} is no longer pending ({how}); a gate is never "
                           "asked twice.", code="gate_answered", state=ap.state)
        if shown_sha256 and shown_sha256 != ap.shown_sha256:
            raise Conflict(f"gate {ap.gate!r} shows content with sha256 {ap.shown_sha256[:12]}..., not the "
                           f"{shown_sha256[:12]}... you reviewed; look again with: musubi runs show {run.id}",
                           code="gate_content_changed")
        if also is not None:
            also()
        now = self.r.now()
        ap.state, ap.decided_by, ap.decided_at, ap.comment = DECISIONS[decision], ctx.user, now, comment
        self.r.write(Update("run_approvals", {"state": ap.state, "decided_by": ctx.user, "decided_at": now,
                                              "comment": comment}, {"run_id": run.id, "gate": ap.gate}))
        art = d.artefacts.get(ap.artefact_id or "")
        if art is not None and decision == "approve" and art.state == "proposed":
            art.state = "approved"
            self.r.write(Update("run_artefacts", {"state": "approved"}, {"artefact_id": art.id}))
        self.r.audit(run.tenant, ctx, f"run.{decision}", f"run:{run.id}", details={
            "run": run.id, "gate": ap.gate, "step": ap.step_path, "decision": decision, "artefact": ap.artefact_id,
            "shown_sha256": ap.shown_sha256, "shown_bytes": len(ap.shown.encode("utf-8")),
            "comment": (comment or "")[:1000],
        })
        self.log(run, ap.step_path, "gate", f"gate {ap.gate} {ap.state} by {ctx.user}")
        return {"run": run.as_json(now, None), "gate": ap.gate, "decision": decision, "by": ctx.user}

    answer = await self.r.run(ctx, f"run.{decision}", f"run:{run.id}", op)
    self._publish_gate(run, ap)
    w = self._waiters.get((run.id, ap.gate))
    if w is not None:
        w.set()
    return answer


async def apply(self: RunService, ctx: Caller, run_id: str, artefact: str | None = None) -> dict[str, Any]:
    """Write a diff artefact into the project, ``git apply`` style: checked whole first, refused on
    conflict or on any path outside the project root; each file written is audited."""
    d = await self._details(self.get(ctx, run_id))
    run = d.run
    diffs = [a for a in d.artefacts.values() if a.kind == "diff" and a.state in ("proposed", "approved")]
    art = d.artefacts.get(artefact) if artefact else (diffs[0] if len(diffs) == 1 else None)
    if art is None:
        what = f"no artefact {artefact!r}" if artefact else f"{len(diffs)} diffs to apply"
        raise NotFound(f"run {run.id} has {what}"
                       f"; name one with --artefact (see: musubi runs show {run.id}).", code="artefact_not_found")
    if art.kind != "diff":
        raise BadRequest(f"artefact {art.id} is a {art.kind}, not a diff; only diffs are applied.", field="artefact")
    gate = next((g for g in d.approvals.values() if g.artefact_id == art.id), None)

    def check() -> None:
        self.r.require(ctx, "runs.approve", project=run.project)
        if art.state == "applied":
            raise Conflict(f"artefact {art.id} was already applied by {art.applied_by}.", code="artefact_applied")
        if gate is not None and gate.state != "approved":
            raise Conflict(f"artefact {art.id} waits on gate {gate.gate!r} ({gate.state}); it can be applied only "
                           "once that gate is approved.", code="artefact_not_approved")

    async with self._apply_lock:
        return await _apply(self, ctx, d, art, check)


async def _apply(self: RunService, ctx: Caller, d: RunData, art: Any, check: Any) -> dict[str, Any]:
    run = d.run
    await self.r.run(ctx, "run.apply", f"run:{run.id}", check)
    root = self.r.state.projects.get(run.tenant, {}).get(run.project or "", {}).get("path")
    if not root:
        raise Conflict(f"run {run.id} has no project, so there is no repository to apply to; start runs inside a "
                       "registered project (musubi project add).", code="no_project")
    try:
        writes = await asyncio.to_thread(gitapply.apply, Path(root), art.content)
    except gitapply.ApplyRefused as exc:
        reason = str(exc)

        def refused() -> None:
            art.state, art.detail = "refused", reason
            self.r.write(Update("run_artefacts", {"state": "refused", "detail": reason[:2000]},
                                {"artefact_id": art.id}))
            self.r.audit(run.tenant, ctx, "run.apply", f"run:{run.id}", "error", details={
                "run": run.id, "artefact": art.id, "sha256": art.sha256, "refused": reason[:500]})
            self.log(run, art.step_path, "apply", f"diff {art.id} refused: {reason[:300]}")

        await self.r.run(ctx, "run.apply", f"run:{run.id}", refused)
        raise Conflict(f"the diff of artefact {art.id} was not applied (nothing was written): {reason}",
                       code="apply_conflict") from None

    def applied() -> dict[str, Any]:
        now = self.r.now()
        art.state, art.applied_at, art.applied_by = "applied", now, ctx.user
        art.detail = ", ".join(w.path for w in writes)[:2000]
        self.r.write(Update("run_artefacts", {"state": "applied", "applied_at": now, "applied_by": ctx.user,
                                              "detail": art.detail}, {"artefact_id": art.id}))
        for w in writes:
            self.r.audit(run.tenant, ctx, "run.write", f"file:{w.path}", details={
                "run": run.id, "artefact": art.id, "path": w.path, "before_sha256": w.before, "after_sha256": w.after})
        self.log(run, art.step_path, "apply", f"diff {art.id} applied by {ctx.user}: {art.detail}")
        return {"run": run.id, "artefact": art.id, "state": "applied", "files": [w.path for w in writes]}

    return await self.r.run(ctx, "run.apply", f"run:{run.id}", applied)
