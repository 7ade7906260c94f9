"""One attempt of a run, as the body of its job (docs/runs.md#life-cycle).

The attempt first settles what a previous attempt left (calls ``sent`` but never completed become
``interrupted`` and their reservations are released; steps left ``running`` become
``interrupted``), then runs the workflow's top-level steps in order: a step already ``done``
is skipped with its recorded output, any other runs its pattern against a
:class:`~core.orchestration.context.RunContext` (whose completed calls replay from the record).
It ends the run ``done``, ``stopped`` (a :class:`RunStop`: quota, budget, turn cap, stuck,
gate timeout), ``failed``, ``cancelled``, or ``interrupted`` when the engine stops under it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from core.errors import MusubiError
from core.models.tokens import count_exact
from core.orchestration.catalog import RunPlan, ensure_patterns, load_plan
from core.orchestration.context import RunContext
from core.orchestration.contracts import PATTERNS, ProviderError, RunStop, StepResult
from core.orchestration.records import ArtefactRecord, RunData, StepRecord, new_artefact_id, sha256
from core.storage.base import Update

if TYPE_CHECKING:
    from core.jobs.handle import JobHandle
    from core.orchestration.service import RunService

log = logging.getLogger("musubi.engine.runs")
ENGINE = "engine"


async def execute(svc: RunService, h: JobHandle) -> dict[str, Any]:
    d = svc.data[h.params["run"]]
    run = d.run
    plan: RunPlan | None = None
    why = ""
    try:
        # Preparing awaits too (reads, the tokenizer, its commit): a cancel arriving then ends the run as below.
        try:
            plan = await _prepare(svc, d, h)
        except MusubiError as exc:
            why = exc.message
        if plan is not None:
            await _steps(svc, d, plan)
    except asyncio.CancelledError:
        if run.cancel_asked:
            await asyncio.shield(finish(svc, d, "cancelled", "cancelled", f"cancelled by {run.reason or 'a user'}"))
        else:
            await asyncio.shield(finish(svc, d, "interrupted", None, "the engine stopped while the run was running; "
                                        "it resumes when the engine starts again"))
        raise
    finally:
        svc._flush_output(run.id)
        svc.drop_live(run.id)
        svc._views.pop(run.id, None)
        svc._stuck.pop(run.id, None)
    if plan is None:
        await finish(svc, d, "failed", "error", why)
    return {"run": run.id, "state": run.state}


async def _prepare(svc: RunService, d: RunData, h: JobHandle) -> RunPlan:
    run = d.run
    ensure_patterns()
    project_root = svc.r.state.projects.get(run.tenant, {}).get(run.project or "", {}).get("path")
    plan = load_plan(run.workflow, project_root, svc.r.paths.home)
    svc._plans[run.id] = plan
    if svc.registry is None:
        raise MusubiError("the engine's model registry is not available to the run service", code="internal")
    allowed = await svc.allowed(run.tenant) if svc.allowed is not None else None
    svc._views[run.id] = (svc.registry(run.tenant), allowed)
    # The calls count their prompts' tokens on the loop: load the tokenizer (seconds, once) off it first.
    await asyncio.to_thread(count_exact, "warm")

    def op() -> None:
        now = svc.r.now()
        left = [c for c in d.calls.values() if c.outcome == "sent"]
        for c in left:  # sent by an attempt that did not live to record the answer
            svc.desk.release(c)
            c.outcome, c.error, c.ended_at = "interrupted", "the engine stopped before the answer was recorded", now
            svc.write_call(c)
        stale = [s for s in d.steps.values() if s.status in ("running", "waiting")]
        for s in stale:
            s.status, s.reason = "interrupted", "the engine stopped during this step; it runs again"
        was = run.state
        run.state, run.job_id, run.attempts = "running", h.id, run.attempts + 1
        run.started_at = run.started_at or now
        run.stop_code = run.reason = None
        if run.attempts > 1:
            svc.r.audit(run.tenant, ENGINE, "run.resume", f"run:{run.id}", details={
                "run": run.id, "attempt": run.attempts, "was": was, "interrupted_calls": [c.key for c in left],
            })
            svc.log(run, None, "state", f"attempt {run.attempts} (was {was}); {len(left)} interrupted call(s) "
                    "will be sent again, completed calls answer from the record")
        else:
            svc.log(run, None, "state", "running")
        svc.save(run, *stale)

    await svc.r.run(None, "run.resume" if run.attempts else "run.run", f"run:{run.id}", op)
    return plan


def _top_step(svc: RunService, d: RunData, i: int, title: str, type_: str, agent: str | None) -> StepRecord:
    path = str(i)
    st = d.steps.get(path)
    if st is None:
        st = StepRecord(d.run.id, path, None, i, title, type_, agent)
        d.steps[path] = st
        svc.write_new(st)
    return st


async def _steps(svc: RunService, d: RunData, plan: RunPlan) -> None:
    run = d.run
    text = run.feature
    for i, spec in enumerate(plan.steps, 1):
        st = _top_step(svc, d, i, spec.id, spec.type, spec.agents[0] if spec.agents else None)
        if st.status == "done":
            text = st.output or ""
            continue
        pattern = PATTERNS.get(spec.type)
        if pattern is None:
            await _end_step(svc, d, st, "failed", f"no pattern for step type {spec.type!r}")
            await finish(svc, d, "failed", "error", f"step {st.path} ({spec.id}): this engine has no pattern for "
                         f"step type {spec.type!r}; known: {', '.join(sorted(PATTERNS))}")
            return
        await _begin_step(svc, d, st)
        tries = plan.retries if plan.on_error == "retry" else 1
        result: StepResult | None = None
        error = ""
        for _ in range(max(1, tries)):
            try:
                result = await pattern(spec, text, RunContext(svc, d, plan, st))
                break
            except RunStop as stop:
                status = "rejected" if stop.code == "rejected" else ("cancelled" if stop.code == "cancelled"
                                                                      else "stopped")
                await _end_step(svc, d, st, status, stop.reason)
                final = "cancelled" if stop.code == "cancelled" else ("failed" if not stop.resumable else "stopped")
                await finish(svc, d, final, stop.code, stop.reason)
                return
            except (ProviderError, MusubiError) as exc:
                error = f"{type(exc).__name__}: {exc}" if isinstance(exc, ProviderError) else exc.message
        if result is None or result.status in ("failed", "stopped", "rejected"):
            why = (result.reason if result else None) or error or "the step failed"
            status = result.status if result else "failed"
            await _end_step(svc, d, st, status, why)
            if plan.on_error == "continue" and status == "failed":
                continue
            code = "rejected" if status == "rejected" else "error"
            await finish(svc, d, "failed" if status != "stopped" else "stopped", code, f"step {st.path}: {why}")
            return
        await _end_step(svc, d, st, "done", None, result)
        text = result.output
    await finish(svc, d, "done", None, None)


async def _begin_step(svc: RunService, d: RunData, st: StepRecord) -> None:
    def op() -> None:
        st.status, st.reason = "running", None
        st.started_at = st.started_at or svc.r.now()
        svc.log(d.run, st.path, "step", f"step {st.path} ({st.title}) started")
        svc.save(d.run, st)

    await svc.r.run(None, "run.step", f"run:{d.run.id}", op)


async def _end_step(svc: RunService, d: RunData, st: StepRecord, status: str, reason: str | None,
                    result: StepResult | None = None) -> None:
    def op() -> None:
        now = svc.r.now()
        st.status, st.reason, st.ended_at = status, reason, now
        if result is not None:
            st.output = result.output
            known = {(a.step_path, a.sha256) for a in d.artefacts.values()}
            for art in result.artefacts:
                digest = sha256(art.content)
                if (st.path, digest) in known:
                    continue  # the gate of this step recorded it already
                rec = ArtefactRecord(new_artefact_id(), d.run.id, st.path, art.kind, art.name[:200], art.content,
                                     digest, "proposed", now)
                d.artefacts[rec.id] = rec
                svc.write_new(rec)
        # Children still marked running ended with their parent.
        for child in d.steps.values():
            if child.parent and child.path.startswith(st.path + "/") and child.status == "running":
                child.status, child.ended_at = status, now
                svc.save(d.run, child)
        svc.log(d.run, st.path, "step", f"step {st.path} ({st.title}) {status}" + (f": {reason}" if reason else ""))
        svc.save(d.run, st)

    await asyncio.shield(svc.r.run(None, "run.step", f"run:{d.run.id}", op))
    svc.drop_live(d.run.id, st.path)  # over: its output now comes from the record


async def finish(svc: RunService, d: RunData, state: str, code: str | None, reason: str | None) -> None:
    """The attempt's end: the run's state, the audit event, the log line (one commit)."""
    run = d.run
    action = {"done": "run.finish", "failed": "run.fail", "stopped": "run.stop", "cancelled": "run.cancelled",
              "interrupted": "run.interrupt"}[state]

    def op() -> None:
        now = svc.r.now()
        run.state, run.stop_code, run.reason = state, code, reason
        if state in ("done", "failed", "cancelled"):
            run.finished_at = now
            close_gates(svc, d)
        left: list[StepRecord] = []
        if state == "cancelled":  # steps the cancel cut short say so (and can be retried one by one)
            left = [st for st in d.steps.values() if st.status in ("running", "waiting")]
            for st in left:
                st.status, st.ended_at = "cancelled", now
        svc.r.audit(run.tenant, ENGINE, action, f"run:{run.id}", details={
            "run": run.id, "state": state, "code": code, "reason": (reason or "")[:500], "tokens": run.tokens,
            "cost_micros": run.cost_micros, "turns": run.turns,
        })
        svc.log(run, None, "state", state + (f" ({code}): {reason}" if code or reason else ""))
        svc.save(run, *left)

    await svc.r.run(None, action, f"run:{run.id}", op)
    if state in ("done", "cancelled"):
        d.clear_calls()  # responses are kept in run_calls; a finished run that cannot resume needs none in memory


def close_gates(svc: RunService, d: RunData) -> None:
    """Inside an operation: a run that ended leaves no gate to answer (pending ones become ``closed``)."""
    for ap in d.approvals.values():
        if ap.state == "pending":
            ap.state = "closed"
            svc.r.write(Update("run_approvals", {"state": "closed"}, {"run_id": d.run.id, "gate": ap.gate}))
