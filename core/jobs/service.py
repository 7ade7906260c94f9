"""The engine's background jobs: kinds, start, cancel, the scheduler, resume after a restart.

The engine holds one :class:`JobService` as ``engine.jobs``.  Every change of a
job goes through the engine's write path (``engine.run``: validated, queued,
answered once the group commit is durable), so jobs survive a kill -9 like any
other write.  Events go out on the engine's event bus after their commit:
``job.state`` on every state change, ``job.progress`` coalesced to at most four
a second per job (core/jobs/coalesce.py).  docs/jobs.md is the user's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.audit import ts_text
from core.config import env
from core.engine.access import suspended_read_check
from core.engine.events import _cap
from core.errors import BadRequest, Conflict, MusubiError, NotFound, TenantSuspended
from core.jobs.coalesce import Coalescer
from core.jobs.handle import JobHandle
from core.jobs.model import ACTIVE, MAX_ERROR, STATES, TERMINAL, Job, check_job_id, new_job_id
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.engine.access import Caller
    from core.engine.runner import OpRunner

log = logging.getLogger("musubi.engine.jobs")

Runner = Callable[[JobHandle], Awaitable[dict[str, Any] | None]]
ENGINE_ACTOR = "engine"  # core.engine.runner.ENGINE_ACTOR (kept apart: jobs stay importable without the runner)
MAX_RUNNING = 2  # jobs running at once; MUSUBI_MAX_JOBS changes it
PERSIST_EVERY_S = 5.0  # progress reaches the database at most this often between checkpoints
MAX_PARAMS_BYTES = 64 * 1024
AUDIT_PARAMS_BYTES = 2048
LIST_MAX = 1000
# Finished jobs held in memory besides the active ones: the most recent ones, and the last of each
# (tenant, project, kind) (the index status shows it).  Older ones are read from table ``jobs``.
KEEP_FINISHED = 500  # MUSUBI_JOBS_KEPT changes it
TEST_HOOK = "MUSUBI_TEST_JOB_KINDS"
# The audited action of each way a run ends.
END_ACTIONS = {"done": "job.finish", "failed": "job.fail", "cancelled": "job.stop", "interrupted": "job.interrupt"}


@dataclass(frozen=True)
class JobKind:
    """A registered kind of job."""

    name: str
    runner: Runner
    permission: str  # needed to start one (and to cancel someone else's)
    resumable: bool = True  # after a restart: resume from the checkpoint (else stays interrupted)
    check_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # raise BadRequest on bad params
    api: bool = True  # may be started through the generic POST /v1/jobs
    # Jobs of this kind run in their own pool of this many (None: the shared pool of max_running).
    # Orchestration runs wait on model APIs and approvals, so they must not hold the index's slots.
    slots: int | None = None


def _bad_result(result: object) -> str | None:
    """Why a runner's result cannot be stored (it must be a JSON object or None), else None."""
    if result is None:
        return None
    if not isinstance(result, dict):
        return f"the job's code returned {type(result).__name__}, not a JSON object or None (a bug in the kind)"
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return f"the job's result is not JSON ({exc}; a bug in the kind)"
    return None


class JobService:
    """Jobs of every tenant, written through the engine.

    In memory (``jobs``): every job not finished, and a bounded number of finished ones (``keep_finished``,
    :meth:`_prune`); reads of older finished jobs go to table ``jobs``, which holds every job.
    """

    def __init__(self, engine: OpRunner, rows: list[dict[str, Any]], keep_finished: int = KEEP_FINISHED) -> None:
        self.e = engine
        self.kinds: dict[str, JobKind] = {}
        self.jobs: dict[str, Job] = {}
        self.keep_finished = _cap("MUSUBI_JOBS_KEPT", keep_finished)
        self.pruned = 0  # finished jobs dropped from memory (since start); while 0 memory has them all
        for r in rows:
            job = Job.from_row(r)
            self.jobs[job.id] = job
        self._prune()
        self.max_running = _cap("MUSUBI_MAX_JOBS", MAX_RUNNING)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._handles: dict[str, JobHandle] = {}
        self._events: dict[str, Coalescer] = {}
        self._persisting: set[str] = set()
        self._persisted: dict[str, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        if env(TEST_HOOK) == "1":  # documented test hook (docs/jobs.md#test-hook), not a feature
            from core.jobs.testkinds import register_test_kinds

            register_test_kinds(self)

    # -- kinds ------------------------------------------------------------------------------

    def register(
        self, kind: str, runner: Runner, *, permission: str, resumable: bool = True,
        check_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None, api: bool = True,
        slots: int | None = None,
    ) -> JobKind:
        """Make ``kind`` startable; ``runner(handle)`` does the work (see core/jobs/handle.py)."""
        from core.rbac import PERMISSIONS

        if permission not in PERMISSIONS:
            raise ValueError(f"job kind {kind!r}: unknown permission {permission!r}")
        if kind in self.kinds:
            raise ValueError(f"job kind {kind!r} is already registered")
        spec = JobKind(kind, runner, permission, resumable, check_params, api, slots)
        self.kinds[kind] = spec
        return spec

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """At engine start (after the kinds are registered): settle what the last run left, resume, schedule.

        Jobs left queued or running become ``interrupted``; ``cancelling`` ones become
        ``cancelled`` (the cancel was asked).  Interrupted jobs of a registered,
        resumable kind are queued again and resume from their checkpoint; others stay
        interrupted with an error saying why.
        """
        now = self.e.now()
        left = [j for j in self.jobs.values() if j.state in ACTIVE]
        stale = [j for j in self.jobs.values() if j.state == "interrupted"]

        def op() -> None:
            for job in left:
                was = job.state
                if was == "cancelling":
                    self._finish_row(job, "cancelled", now, "the engine stopped while the job was being cancelled")
                    self._audit(job, ENGINE_ACTOR, "job.stop", {"state": "cancelled"})
                    continue
                self._finish_row(job, "interrupted", now, f"the engine stopped while the job was {was}")
                at = ts_text(job.checkpoint_at)
                self._audit(job, ENGINE_ACTOR, "job.interrupt", {"was": was, "checkpoint_at": at})
                stale.append(job)
            for job in stale:
                spec = self.kinds.get(job.kind)
                if spec is None or not spec.resumable:
                    why = "is not available in this engine" if spec is None else "cannot resume"
                    msg = (f"interrupted: job kind {job.kind!r} {why}; cancel it (musubi jobs cancel {job.id}) "
                           "and start the work again")
                    if job.error != msg:
                        job.error = msg
                        job.updated_at = now
                        self._persist(job)
                    continue
                job.move("queued")
                job.error = None
                job.finished_at = None
                job.updated_at = now
                self._persist(job)
                self._audit(job, ENGINE_ACTOR, "job.resume", {"checkpoint": job.checkpoint is not None})

        try:
            if left or stale:
                await self.e.run(None, "job.resume", "jobs", op)
                for job in {j.id: j for j in left + stale}.values():
                    self._publish_state(job)
        except Exception:
            # The engine must still serve; these jobs stay as they are and are settled at the next start.
            log.exception("could not settle the jobs the last engine left; they stay as they were")
        self._started = True
        self._pump()

    async def close(self) -> None:
        """At a graceful stop: stop running jobs (they become interrupted and resume at the next start)."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for h in self._handles.values():
            h.cancelled.set()
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for c in self._events.values():
            c.close()
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)

    # -- reads ------------------------------------------------------------------------------

    def _visible(self, ctx: Caller, job: Job) -> bool:
        # Any role covering the job's scope: a tenant-scope one, or one on the job's project.
        return job.tenant == ctx.tenant and bool(self.e.perms(ctx, job.project))

    async def get(self, ctx: Caller, job_id: str) -> Job:
        """The job, or 404 when it does not exist or is not the caller's to see (other tenant, other project).

        A finished job no longer in memory is read from table ``jobs``."""
        check_job_id(job_id)
        job = self.jobs.get(job_id)
        if job is None and self.pruned:
            row = await self.e.read(self.e.storage.job_row, ctx.tenant, job_id)
            job = Job.from_row(row) if row is not None else None
        if job is None or not self._visible(ctx, job):
            raise NotFound(
                f"no job {job_id} in tenant {ctx.tenant!r} that you can see. See your jobs with: musubi jobs list",
                resource=f"job:{job_id}",
            )
        return job

    async def show(self, ctx: Caller, job_id: str) -> dict[str, Any]:
        suspended_read_check(self.e.state, ctx)
        return (await self.get(ctx, job_id)).as_json(self.e.now())

    async def list(
        self, ctx: Caller, state: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The caller's visible jobs of the tenant, newest first (finished ones no longer in memory from the table)."""
        suspended_read_check(self.e.state, ctx)
        states = set(state.split(",")) if state else None
        if states and not states <= set(STATES):
            bad = ", ".join(sorted(states - set(STATES)))
            raise BadRequest(f"unknown job state {bad}; states are: {', '.join(STATES)}.", field="state")
        rows = [
            j for j in self.jobs.values()
            if (states is None or j.state in states) and (kind is None or j.kind == kind) and self._visible(ctx, j)
        ]
        older = sorted(TERMINAL & states if states is not None else TERMINAL)
        if self.pruned and older:
            # Only finished jobs ever leave memory; the ones still held are fresher than their rows.
            held = [j.id for j in self.jobs.values() if j.tenant == ctx.tenant]
            found = await self.e.read(self.e.storage.job_rows, ctx.tenant, older, kind, self._projects(ctx),
                                      held, limit)
            rows += [j for j in map(Job.from_row, found) if self._visible(ctx, j)]
        rows.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        now = self.e.now()
        return [j.as_json(now) for j in rows[:limit]]

    def _projects(self, ctx: Caller) -> tuple[str, ...] | None:
        """The projects whose jobs ``ctx`` may see: None for all (a tenant-wide role), else those it has a role on."""
        if self.e.perms(ctx, None):
            return None
        return tuple(p for p in self.e.state.projects.get(ctx.tenant, {}) if self.e.perms(ctx, p))

    def _prune(self) -> None:
        """Drop the oldest finished jobs from memory beyond ``keep_finished`` (never the last of a
        (tenant, project, kind): the index status reads it).  Their rows stay in table ``jobs``."""
        finished = sorted((j for j in self.jobs.values() if j.state in TERMINAL),
                          key=lambda j: (j.finished_at or j.updated_at, j.id), reverse=True)
        if len(finished) <= self.keep_finished:
            return
        last: set[tuple[str, str | None, str]] = set()
        for i, job in enumerate(finished):
            key = (job.tenant, job.project, job.kind)
            if key not in last:
                last.add(key)
            elif i >= self.keep_finished:
                del self.jobs[job.id]
                self.pruned += 1

    # -- start and cancel -------------------------------------------------------------------

    async def submit(self, ctx: Caller, kind: str, params: dict[str, Any] | None = None, *,
                     project: str | None = None, api: bool = False) -> dict[str, Any]:
        """Start a job of ``kind`` for ``ctx`` (permission-checked, audited ``job.start``); answers it queued.

        ``project`` is the scope of the work (None: the whole tenant); the kind's
        permission is checked at that scope.  ``api`` is set by the generic route,
        which may start only kinds registered with ``api=True``.
        """
        spec = self.kinds.get(kind)
        if spec is None or (api and not spec.api):
            known = ", ".join(sorted(k for k, s in self.kinds.items() if s.api or not api)) or "none"
            raise BadRequest(f"unknown job kind {kind!r}; kinds this engine runs: {known}.", field="kind")
        params = dict(params or {})
        if len(json.dumps(params, ensure_ascii=False)) > MAX_PARAMS_BYTES:
            raise BadRequest(f"job params are larger than {MAX_PARAMS_BYTES:,} bytes; send less.", field="params")
        if spec.check_params is not None:
            params = spec.check_params(params)
        holder: list[Job] = []

        def op() -> dict[str, Any]:
            self.e.require(ctx, spec.permission, project=project)
            job = self.enqueue(ctx, kind, params, project)
            holder.append(job)
            return job.as_json(self.e.now())

        try:
            answer = await self.e.run(ctx, "job.start", f"job:{kind}", op)
        except BaseException:
            for job in holder:  # never committed: forget it
                self.jobs.pop(job.id, None)
            raise
        self.enqueued(holder[0])
        return answer

    def enqueue(self, ctx: Caller, kind: str, params: dict[str, Any], project: str | None) -> Job:
        """Queue a job inside the caller's own operation (its permission checks are the caller's):
        the job commits with that operation's writes.  Call :meth:`enqueued` once it has committed,
        or :meth:`forget` if it failed."""
        now = self.e.now()
        job = Job(new_job_id(), kind, ctx.tenant, project, "queued", ctx.user, now, now, params=params)
        self.e.write(Insert("jobs", job.row()))
        size = len(json.dumps(params, ensure_ascii=False))
        # Params go to the audit log in full when small; large ones only by size (the row has them).
        shown = {"params": params} if size <= AUDIT_PARAMS_BYTES else {"params_bytes": size}
        self._audit(job, ctx, "job.start", {"kind": kind, "project": project, **shown})
        self.jobs[job.id] = job
        return job

    def enqueued(self, job: Job) -> None:
        """After the commit of :meth:`enqueue`: announce the job and start it when a slot is free."""
        self._publish_state(job)
        self._pump()

    def forget(self, job_id: str) -> None:
        """A job queued by an operation that failed (never committed)."""
        self.jobs.pop(job_id, None)

    async def cancel(self, ctx: Caller, job_id: str) -> dict[str, Any]:
        """Cancel a job; needs the kind's start permission at the job's scope, or being its creator.

        Audited ``job.cancel``.  A running job becomes ``cancelling`` and its work is
        stopped (flag, then task cancellation); a queued or interrupted one is cancelled at once.
        """
        job = await self.get(ctx, job_id)

        def op() -> dict[str, Any]:
            spec = self.kinds.get(job.kind)
            if job.created_by != ctx.user:
                self.e.require(ctx, spec.permission if spec else "tenant.manage", project=job.project)
            elif self.e.state.tenants[ctx.tenant].status == "suspended":
                # A cancel is a write: like every write of a suspended tenant, refused (its creator included).
                raise TenantSuspended(
                    f"tenant {ctx.tenant!r} is suspended: only admin reads and resume are allowed. "
                    f"A system owner can resume it with: musubi tenant resume {ctx.tenant}",
                    permission=spec.permission if spec else "tenant.manage",
                )
            if job.state == "cancelling":
                return job.as_json(self.e.now())  # asked already: the work is stopping
            if job.state in TERMINAL:
                raise Conflict(f"job {job.id} is already {job.state}; there is nothing to cancel.",
                               code="job_finished", state=job.state)
            now = self.e.now()
            job.cancelled_by = ctx.user
            if job.state == "running":
                job.move("cancelling")
                job.updated_at = now
                self._persist(job)
            else:  # queued or interrupted: nothing runs, so it is cancelled at once
                self._finish_row(job, "cancelled", now, f"cancelled by {ctx.user} before it ran"
                                 if job.state == "queued" else f"cancelled by {ctx.user} after an interruption")
            self._audit(job, ctx, "job.cancel", {"kind": job.kind, "state": job.state, "done": job.done})
            return job.as_json(now)

        answer = await self.e.run(ctx, "job.cancel", f"job:{job.id}", op)
        self._publish_state(job)
        if job.state == "cancelling":
            h, task = self._handles.get(job.id), self._tasks.get(job.id)
            if h is not None:
                h.cancelled.set()  # cooperative: the runner sees it between steps
            if task is not None:
                task.cancel()  # forced: a runner that ignores the flag stops at its next await
        return answer

    # -- running ----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start queued jobs, oldest first, while fewer than ``max_running`` run."""
        if not self._started or self._stopping:
            return
        queued = sorted((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: (j.created_at, j.id))
        running: dict[str | None, int] = {}
        for jid in self._tasks:
            k = self.jobs[jid].kind
            pool = k if k in self.kinds and self.kinds[k].slots else None
            running[pool] = running.get(pool, 0) + 1
        for job in queued:
            spec = self.kinds.get(job.kind)
            if spec is None:
                continue
            pool, cap = (job.kind, spec.slots) if spec.slots else (None, self.max_running)
            if running.get(pool, 0) >= cap:
                continue
            running[pool] = running.get(pool, 0) + 1
            self._launch(job)

    def _launch(self, job: Job) -> None:
        now = self.e.now()
        job.move("running")
        job.attempts += 1
        job.started_at = job.started_at or now
        job.updated_at = now
        job.rate_since, job.rate_base = now, job.done
        handle = JobHandle(self, job)
        self._handles[job.id] = handle
        self._events[job.id] = Coalescer(lambda: self._publish_progress(job))
        self._tasks[job.id] = asyncio.get_running_loop().create_task(self._execute(job, handle), name=f"job {job.id}")

    async def _execute(self, job: Job, handle: JobHandle) -> None:
        spec = self.kinds[job.kind]
        try:
            # Committed before any work: a crash from here on finds it running and interrupts it.
            await asyncio.shield(self.e.run(None, "job.run", f"job:{job.id}", lambda: self._persist(job)))
            self._publish_state(job)
            result = await spec.runner(handle)
        except asyncio.CancelledError:
            if self._stopping:
                await self._end(job, handle, "interrupted", "the engine stopped while the job was running")
            else:
                await self._end(job, handle, "cancelled", f"cancelled by {job.cancelled_by or 'the engine'}")
        except Exception as exc:
            msg = exc.message if isinstance(exc, MusubiError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, MusubiError):
                log.exception("job %s (%s) failed", job.id, job.kind)
            await self._end(job, handle, "failed", msg)
        else:
            if handle.cancelled.is_set():
                await self._end(job, handle, "cancelled", f"cancelled by {job.cancelled_by or 'the engine'}")
            elif (bad := _bad_result(result)) is not None:
                log.error("job %s (%s): %s", job.id, job.kind, bad)
                await self._end(job, handle, "failed", bad)
            else:
                await self._end(job, handle, "done", None, result)
        finally:
            self._tasks.pop(job.id, None)
            self._handles.pop(job.id, None)
            self._persisting.discard(job.id)
            self._persisted.pop(job.id, None)
            ev = self._events.pop(job.id, None)
            if ev is not None:
                ev.close()
            self._prune()
            self._pump()

    async def _end(self, job: Job, handle: JobHandle, state: str, error: str | None,
                   result: dict[str, Any] | None = None) -> None:
        """Commit the job's final state (its pending writes too when it is done); audit it."""
        ev = self._events.get(job.id)
        if ev is not None:
            ev.flush()
        pending = handle.take_pending() if state == "done" else []
        action = END_ACTIONS[state]

        def op() -> None:
            self.e.write(*pending)
            self._finish_row(job, state, self.e.now(), error, result)
            self._audit(job, ENGINE_ACTOR, action, {"kind": job.kind, "state": state, "done": job.done,
                                                    "total": job.total, **({"error": job.error} if error else {})})

        try:
            await asyncio.shield(self.e.run(None, action, f"job:{job.id}", op))
        except asyncio.CancelledError:
            pass  # the engine is stopping; the write itself goes on
        except Exception:
            log.exception("could not record the end of job %s", job.id)
        self._publish_state(job)

    # -- progress and checkpoints (called by JobHandle) -------------------------------------

    def progressed(self, job: Job) -> None:
        job.updated_at = self.e.now()
        ev = self._events.get(job.id)
        if ev is not None:
            ev.report()

    async def commit_checkpoint(self, handle: JobHandle, data: dict[str, Any]) -> None:
        job = self.jobs[handle.id]
        muts = handle.take_pending()

        def op() -> None:
            self.e.write(*muts)
            now = self.e.now()
            job.checkpoint, job.checkpoint_at, job.updated_at = data, now, now
            self._persist(job)

        # Shielded: a cancel arriving now must not cancel the group commit other operations share.
        await asyncio.shield(self.e.run(None, "job.checkpoint", f"job:{job.id}", op))

    def _persist_progress(self, job: Job) -> None:
        """Between checkpoints, write progress at most every PERSIST_EVERY_S (never flooding the journal)."""
        loop = asyncio.get_running_loop()
        if job.id in self._persisting or loop.time() - self._persisted.get(job.id, 0.0) < PERSIST_EVERY_S:
            return
        self._persisting.add(job.id)

        async def write() -> None:
            try:
                if job.state in ("running", "cancelling"):
                    await self.e.run(None, "job.progress", f"job:{job.id}", lambda: self._persist(job))
            except Exception:
                log.exception("could not persist the progress of job %s", job.id)
            finally:
                self._persisting.discard(job.id)

        task = loop.create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- rows, audit, events ----------------------------------------------------------------

    def _persist(self, job: Job) -> None:
        row = job.row()
        del row["job_id"]
        self.e.write(Update("jobs", row, {"job_id": job.id}))
        with contextlib.suppress(RuntimeError):
            self._persisted[job.id] = asyncio.get_running_loop().time()

    def _finish_row(self, job: Job, state: str, now: datetime, error: str | None,
                    result: dict[str, Any] | None = None) -> None:
        job.move(state)
        job.finished_at = now
        job.updated_at = now
        job.error = error[:MAX_ERROR] if error else None
        if result is not None:
            job.result = result
        self._persist(job)

    def _audit(self, job: Job, actor: Caller | str, action: str, details: dict[str, Any]) -> None:
        if job.tenant in self.e.state.tenants:
            self.e.audit(job.tenant, actor, action, f"job:{job.id}", details=details)

    def _publish_state(self, job: Job) -> None:
        self.e.bus.publish(job.tenant, {"type": "job.state", "tenant": job.tenant, "job": job.as_json(self.e.now())})

    def _publish_progress(self, job: Job) -> None:
        self.e.bus.publish(job.tenant, {"type": "job.progress", "tenant": job.tenant, "job": job.as_json(self.e.now())})
        if job.state in ("running", "cancelling"):
            self._persist_progress(job)
