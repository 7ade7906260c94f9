"""The run service (``engine.runs``): orchestration runs as durable background jobs (docs/runs.md).

A run is a row of ``runs`` plus its step tree, calls, artefacts and gates (migration 006), held in
memory like jobs and written through the engine's group commit.  Each attempt of a run is a job
of kind ``run`` on the engine's :class:`~core.jobs.service.JobService` (its own pool of slots, so
runs waiting on model APIs or approvals never hold the index's slots): after a restart or kill -9
the job machinery re-queues it and the attempt resumes — top-level steps already done are not
run again, calls already completed answer from the record, gates already answered return their
decision.  Model calls go through :class:`core.orchestration.calls.CallDesk`.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from core.api.runs import FINAL_STATES, OUTPUT_INTERVAL_S, RUN_STATES, check_run_id
from core.audit import format_ts
from core.engine.access import Caller, suspended_read_check
from core.errors import BadRequest, MusubiError, NotFound, ProviderNotConfigured
from core.jobs.coalesce import Coalescer
from core.orchestration import ops
from core.orchestration.calls import CallDesk, call_json
from core.orchestration.catalog import Budget, RunPlan
from core.orchestration.contracts import Artefact, ChatProvider, RunStop
from core.orchestration.live import LiveTail
from core.orchestration.metrics import LatencyRecorder
from core.orchestration.records import (
    ApprovalRecord,
    ArtefactRecord,
    CallRecord,
    RunData,
    RunRecord,
    StepRecord,
    new_artefact_id,
    sha256,
)
from core.orchestration.stuck import StuckDetector
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.engine.usage import UsageService
    from core.jobs.handle import JobHandle
    from core.jobs.service import JobService
    from core.models.registry import Registry
    from core.orchestration.providers import ProviderHub, ProviderSet

log = logging.getLogger("musubi.engine.runs")

KIND = "run"
RUN_SLOTS = 64  # runs executing at once (each mostly waits on a provider or a person)
DEFAULT_MAX_TURNS = 200
DEFAULT_MAX_STEP_TURNS = 25
DEFAULT_GATE_TIMEOUT_S = 24 * 3600
NOT_RESUMABLE = frozenset({"stuck", "rejected", "cancelled"})
ENGINE = "engine"


def no_provider_message(pset: ProviderSet | None) -> str:
    """What to set for each provider, when no provider is configured (the CLI and Dashboard show it)."""
    from core.orchestration.provider_settings import NO_PROVIDER_HINTS

    hints = {h["provider"]: h["hint"] for h in pset.setup_hints()} if pset is not None else {}
    what = "; ".join(f"{p}: {hints.get(p, h)}" for p, h in NO_PROVIDER_HINTS.items() if not hints or p in hints)
    return ("no LLM provider is configured, so a run cannot call a model. For each provider, what to set (in the "
            f"environment the engine starts with, or config.toml) — {what}. Then run: musubi engine reload "
            "(check with: musubi providers list)")


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    check_run_id(params.get("run"), "params.run")
    return {"run": params["run"]}


class RunService:
    """Runs of every tenant (``engine.runs``)."""

    def __init__(self, runner: OpRunner, jobs: JobService, usage: UsageService, providers: ProviderHub | None = None,
                 latency: LatencyRecorder | None = None) -> None:
        self.r = runner
        self.jobs = jobs
        self.usage = usage
        self.data: dict[str, RunData] = {}
        self.desk = CallDesk(self)
        self.hub = providers  # the engine's providers (core/orchestration/providers.py), swapped by reload
        self.latency = latency if latency is not None else LatencyRecorder()
        self._scripted: Any = None  # the test hook's scripted provider (core/orchestration/testkit.py)
        # The registry and the tenant's allowed models: set by the route feature (routes_runs.py).
        self.registry: Callable[[str], Registry] | None = None
        self.allowed: Callable[[str], Any] | None = None
        self._views: dict[str, tuple[Registry, set[str] | None]] = {}
        self._plans: dict[str, RunPlan] = {}
        self._stuck: dict[str, StuckDetector] = {}
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._out: dict[str, tuple[Coalescer, dict[tuple[str, str], tuple[int, list[str]]]]] = {}
        self.live: dict[tuple[str, str], LiveTail] = {}  # (run, step path) -> its stream's tail, while it runs
        self.settings: dict[str, dict[str, Any]] = {}  # tenant -> its run_settings row (migration 011)
        self._apply_lock = asyncio.Lock()  # one repository write at a time (check, write, record)
        # tutorials (issue 18): a tutorial sandbox tenant's runs use the labelled replay provider (set by the
        # engine from core/engine/tutorials.py); None elsewhere, so no other run ever gets it silently
        self.sandbox_provider: Callable[[str], ChatProvider | None] | None = None
        self._load()
        jobs.register(KIND, self._job, permission="runs.cancel", check_params=_check_params, api=False,
                      slots=RUN_SLOTS)

    def _load(self) -> None:
        loader = getattr(self.r.storage, "runs_load", None)
        if loader is None:
            return
        rows = loader()
        for r in rows["runs"]:
            rec = RunRecord.from_row(r)
            self.data[rec.id] = RunData(rec)
        self._fill(rows)
        self.settings = {r["tenant_id"]: r for r in rows.get("run_settings", [])}

    def _fill(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for r in rows["run_steps"]:
            s = StepRecord.from_row(r)
            self.data[s.run_id].steps[s.path] = s
        for r in rows["run_calls"]:
            c = CallRecord.from_row(r)
            self.data[c.run_id].add_call(c)
        for r in rows["run_artefacts"]:
            a = ArtefactRecord.from_row(r)
            self.data[a.run_id].artefacts[a.id] = a
        for r in rows["run_approvals"]:
            g = ApprovalRecord.from_row(r)
            self.data[g.run_id].approvals[g.gate] = g
        for r in rows["run_log"]:
            if r["run_id"] in self.data:
                self.data[r["run_id"]].run.log_n = int(r["n"])

    # -- what calls need ------------------------------------------------------------------------

    def model_view(self, run: RunRecord) -> tuple[Registry, set[str] | None]:
        view = self._views.get(run.id)
        if view is None:
            raise MusubiError("the run's model view was not prepared (a bug)", code="internal")
        return view

    def provider_for(self, run: RunRecord, model_id: str) -> tuple[ChatProvider, str]:
        """The provider for ``model_id`` (never the replay provider: that one is chosen only by name);
        ProviderNotConfigured saying what to set when none can serve it."""
        from core.orchestration import testkit

        if testkit.scripted(self.r.paths.home):
            if self._scripted is None:
                self._scripted = testkit.ScriptedProviders(self.r.paths.home)
            provider, name = self._scripted.for_model(model_id)
            return provider, name
        if self.sandbox_provider is not None and (sandboxed := self.sandbox_provider(run.tenant)) is not None:
            return sandboxed, model_id  # tutorials (issue 18): replay, by the tenant being a sandbox
        if self.hub is None:
            raise ProviderNotConfigured(no_provider_message(None))
        registry, _allowed = self.model_view(run)
        return self.hub.current.for_model(model_id, registry=registry)

    def check_providers(self, tenant: str | None = None) -> None:
        """Before a run is queued: refuse, saying what to set for each provider, when none is configured."""
        from core.orchestration import testkit

        if testkit.scripted(self.r.paths.home):
            return
        if tenant is not None and self.sandbox_provider is not None and self.sandbox_provider(tenant) is not None:
            return  # tutorials (issue 18): a sandbox runs on the replay provider
        pset = self.hub.current if self.hub is not None else None
        if pset is None or not any(s.provider is not None and s.settings.kind != "replay" for s in pset.slots):
            raise ProviderNotConfigured(no_provider_message(pset))

    def agent_budget(self, run_id: str, agent: str) -> Budget | None:
        plan = self._plans.get(run_id)
        return plan.agent_budgets.get(agent) if plan else None

    def check_stuck(self, d: RunData, path: str, text: str) -> None:
        reason = self._stuck.setdefault(d.run.id, StuckDetector()).observe(path, text)
        if reason:
            raise RunStop(reason, code="stuck", resumable=False)

    # -- rows, log, events ----------------------------------------------------------------------

    def write_new(self, *recs: CallRecord | StepRecord | ArtefactRecord | ApprovalRecord) -> None:
        table = {CallRecord: "run_calls", StepRecord: "run_steps", ArtefactRecord: "run_artefacts",
                 ApprovalRecord: "run_approvals"}
        for rec in recs:
            self.r.write(Insert(table[type(rec)], rec.row()))

    def write_call(self, call: CallRecord, cols: tuple[str, ...] | None = None) -> None:
        """Queue the call's row (only ``cols`` of it when given: what changed since it was inserted)."""
        row = call.row()
        del row["call_key"]
        if cols is not None:
            row = {c: row[c] for c in cols}
        self.r.write(Update("run_calls", row, {"call_key": call.key}))

    def save(self, run: RunRecord, *steps: StepRecord) -> None:
        """Queue the run's row (and ``steps``' rows); publish them once committed."""
        run.updated_at = self.r.now()
        row = run.row()
        del row["run_id"]
        self.r.write(Update("runs", row, {"run_id": run.id}))
        for st in steps:
            srow = st.row()
            del srow["run_id"], srow["path"]
            self.r.write(Update("run_steps", srow, {"run_id": st.run_id, "path": st.path}))
        self.r.committer.on_commit(partial(self._announce, run, steps))

    def save_counters(self, run: RunRecord, run_cols: tuple[str, ...], st: StepRecord,
                      st_cols: tuple[str, ...]) -> None:
        """:meth:`save` for a model call: only the counters it moved (``run_cols``, ``st_cols``) are
        queued, so every call journals and applies a handful of values instead of two whole rows."""
        run.updated_at = self.r.now()
        self.r.write(Update("runs", {**{c: getattr(run, c) for c in run_cols}, "updated_at": run.updated_at},
                            {"run_id": run.id}),
                     Update("run_steps", {c: getattr(st, c) for c in st_cols}, {"run_id": st.run_id, "path": st.path}))
        self.r.committer.on_commit(partial(self._announce, run, (st,)))

    def _announce(self, run: RunRecord, steps: tuple[StepRecord, ...]) -> None:
        now = self.r.now()
        ts = format_ts(now)
        d = self.data.get(run.id)
        gate = d.pending_gate() if d else None
        self.r.bus.publish(run.tenant, {"type": "run.state", "tenant": run.tenant, "ts": ts,
                                        "run": run.as_json(now, gate)})
        for st in steps:
            self.r.bus.publish(run.tenant, {"type": "run.step", "tenant": run.tenant, "ts": ts, "run": run.id,
                                            "step": st.as_json(now)})

    def log(self, run: RunRecord, path: str | None, kind: str, text: str) -> None:
        """Inside an operation: one line of the run's log (never prompt or output text)."""
        run.log_n += 1
        self.r.write(Insert("run_log", {"run_id": run.id, "n": run.log_n, "ts": self.r.now(), "step_path": path,
                                        "kind": kind, "text": text[:2000]}))

    def note(self, run: RunRecord, path: str | None, text: str) -> None:
        ts = format_ts(self.r.now())
        self.r.bus.publish(run.tenant, {"type": "run.note", "tenant": run.tenant, "ts": ts, "run": run.id,
                                        "step": path, "text": text[:2000]})

    def output(self, run: RunRecord, path: str, agent: str, text: str) -> None:
        """A streamed delta: kept in the step's live tail (core/orchestration/live.py) and folded into at most
        one ``run.output`` per run every OUTPUT_INTERVAL_S, each carrying its offset in the step's stream."""
        tail = self.live.get((run.id, path))
        if tail is None:
            tail = self.live[(run.id, path)] = LiveTail()
        start = tail.end
        tail.add(text)
        entry = self._out.get(run.id)
        if entry is None:
            buf: dict[tuple[str, str], tuple[int, list[str]]] = {}

            def emit(run: RunRecord = run, buf: dict[tuple[str, str], tuple[int, list[str]]] = buf) -> None:
                ts = format_ts(self.r.now())
                for (p, a), (offset, parts) in list(buf.items()):
                    self.r.bus.publish(run.tenant, {"type": "run.output", "tenant": run.tenant, "ts": ts,
                                                    "run": run.id, "step": p, "agent": a, "text": "".join(parts),
                                                    "offset": offset})
                buf.clear()

            entry = self._out[run.id] = (Coalescer(emit, OUTPUT_INTERVAL_S), buf)
        coalescer, pending = entry
        held = pending.get((path, agent))
        if held is not None and held[0] + sum(map(len, held[1])) != start:
            coalescer.flush()  # another agent streamed into this step meanwhile: each event stays one span
            held = None
        if held is None:
            pending[(path, agent)] = (start, [text])
        else:
            held[1].append(text)
        coalescer.report()

    def drop_live(self, run_id: str, path: str | None = None) -> None:
        """Forget the live tails of step ``path`` and its children (None: of the whole run)."""
        for key in [k for k in self.live if k[0] == run_id and (path is None or k[1] == path
                                                                 or k[1].startswith(path + "/"))]:
            del self.live[key]

    def _flush_output(self, run_id: str) -> None:
        entry = self._out.pop(run_id, None)
        if entry is not None:
            entry[0].flush()
            entry[0].close()

    def publish_call(self, run: RunRecord, call: CallRecord, *, replayed: bool) -> None:
        self._flush_output(run.id)
        self.r.bus.publish(run.tenant, {**call_json(run.tenant, call, replayed), "ts": format_ts(self.r.now())})

    # -- the step tree -------------------------------------------------------------------------

    def child_step(self, d: RunData, parent: StepRecord, label: str, title: str, ord_: int) -> StepRecord:
        path = f"{parent.path}/{label}"
        st = d.steps.get(path)
        if st is None:
            st = StepRecord(d.run.id, path, parent.path, ord_, title[:200], "child", status="running",
                            started_at=self.r.now())
            d.steps[path] = st
            self.write_new(st)  # rides with the next commit (the child's first call or the step's end)
            self.r.committer.on_commit(partial(self._announce, d.run, (st,)))
        return st

    # -- gates -------------------------------------------------------------------------------------

    def waiter(self, run_id: str, gate: str) -> asyncio.Event:
        return self._waiters.setdefault((run_id, gate), asyncio.Event())

    def drop_waiter(self, run_id: str, gate: str) -> None:
        self._waiters.pop((run_id, gate), None)

    async def ask_gate(self, d: RunData, st: StepRecord, gate: str, artefact: Artefact,
                       timeout_s: float | None) -> ApprovalRecord:
        """Record the gate (and its artefact) as pending before anyone is asked; the run waits."""
        run = d.run

        def op() -> ApprovalRecord:
            now = self.r.now()
            ap = d.approvals.get(gate)
            wait_s = int(timeout_s) if timeout_s else run.gate_timeout_s
            if ap is None:
                art = ArtefactRecord(new_artefact_id(), run.id, st.path, artefact.kind, artefact.name[:200],
                                     artefact.content, sha256(artefact.content), "proposed", now)
                d.artefacts[art.id] = art
                ap = ApprovalRecord(run.id, gate, st.path, art.id, art.sha256, art.content, "pending", now,
                                    now + timedelta(seconds=wait_s))
                d.approvals[gate] = ap
                self.write_new(art, ap)
                self.r.audit(run.tenant, ENGINE, "run.gate", f"run:{run.id}", details={
                    "run": run.id, "step": st.path, "gate": gate, "artefact": art.id, "kind": art.kind,
                    "shown_sha256": ap.shown_sha256, "shown_bytes": len(art.content.encode("utf-8")),
                    "deadline": format_ts(ap.deadline) if ap.deadline else None,
                })
                self.log(run, st.path, "gate", f"approval gate {gate} asked (artefact {art.id}, "
                         f"sha256 {art.sha256[:12]}); fails closed at {format_ts(ap.deadline or now)}")
            run.state, st.status = "waiting", "waiting"
            self.save(run, st)
            return ap

        ap = await self.r.run(None, "run.gate", f"run:{run.id}", op)
        self._publish_gate(run, ap)
        return ap

    def _publish_gate(self, run: RunRecord, ap: ApprovalRecord) -> None:
        self.r.bus.publish(run.tenant, {"type": "run.gate", "tenant": run.tenant, "ts": format_ts(self.r.now()),
                                        "run": run.id, "approval": ap.as_json()})

    async def gate_timed_out(self, d: RunData, st: StepRecord, gate: str) -> None:
        run = d.run

        def op() -> None:
            ap = d.approvals[gate]
            if ap.state != "pending":
                return  # decided in the same instant: the decision stands
            ap.state = "timed_out"
            self.r.write(Update("run_approvals", {"state": "timed_out"}, {"run_id": run.id, "gate": gate}))
            self.r.audit(run.tenant, ENGINE, "run.gate_timeout", f"run:{run.id}", "error", details={
                "run": run.id, "step": st.path, "gate": gate, "shown_sha256": ap.shown_sha256,
                "decision": None, "fails_closed": True,
            })
            self.log(run, st.path, "gate", f"approval gate {gate} timed out: failed closed (not approved)")

        await asyncio.shield(self.r.run(None, "run.gate_timeout", f"run:{run.id}", op))
        self._publish_gate(run, d.approvals[gate])

    async def gate_passed(self, d: RunData, st: StepRecord) -> None:
        run = d.run
        if run.state != "waiting" and st.status != "waiting":
            return

        def op() -> None:
            run.state, st.status = "running", "running"
            self.save(run, st)

        await self.r.run(None, "run.gate", f"run:{run.id}", op)

    # -- reads ------------------------------------------------------------------------------------

    def _visible(self, ctx: Caller, run: RunRecord) -> bool:
        return run.tenant == ctx.tenant and bool(self.r.perms(ctx, run.project))

    def get(self, ctx: Caller, run_id: str) -> RunData:
        """The run, or 404 when it does not exist or the caller cannot see it (other tenant, other project)."""
        check_run_id(run_id)
        d = self.data.get(run_id)
        if d is None or not self._visible(ctx, d.run):
            raise NotFound(f"no run {run_id} in tenant {ctx.tenant!r} that you can see. See your runs with: "
                           "musubi runs list", resource=f"run:{run_id}", code="run_not_found")
        return d

    def list(self, ctx: Caller, state: str | None = None, limit: int = 50) -> builtins.list[dict[str, Any]]:
        suspended_read_check(self.r.state, ctx)
        states = set(state.split(",")) if state else None
        if states and not states <= set(RUN_STATES):
            bad = ", ".join(sorted(states - set(RUN_STATES)))
            raise BadRequest(f"unknown run state {bad}; states are: {', '.join(RUN_STATES)}.", field="state")
        rows = [d.run for d in self.data.values()
                if (states is None or d.run.state in states) and self._visible(ctx, d.run)]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        now = self.r.now()
        return [r.as_json(now, self.data[r.id].pending_gate()) for r in rows[:limit]]

    async def _details(self, d: RunData) -> RunData:
        """Steps, calls, artefacts and gates of a finished run (not kept in memory after a restart)."""
        if d.steps or d.run.state not in FINAL_STATES:
            return d
        loader = getattr(self.r.storage, "runs_load", None)
        if loader is None:
            return d
        rows = await self.r.read(loader, [d.run.id])
        rows["runs"], rows["run_log"] = [], []
        self._fill(rows)
        return d

    async def show(self, ctx: Caller, run_id: str) -> dict[str, Any]:
        suspended_read_check(self.r.state, ctx)
        d = await self._details(self.get(ctx, run_id))
        now = self.r.now()
        steps = sorted(d.steps.values(), key=lambda s: [int(x) if x.isdigit() else x for x in s.path.split("/")])
        return {
            **d.run.as_json(now, d.pending_gate()), "steps": [s.as_json(now) for s in steps],
            "approvals": [a.as_json() for a in sorted(d.approvals.values(), key=lambda a: a.asked_at)],
            "artefacts": [a.as_json() for a in sorted(d.artefacts.values(), key=lambda a: a.created_at)],
        }

    async def logs(self, ctx: Caller, run_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        suspended_read_check(self.r.state, ctx)
        d = self.get(ctx, run_id)
        rows = await self.r.read(self.r.storage.run_log, d.run.id, after, limit)
        lines = [{"n": int(r["n"]), "ts": format_ts(r["ts"]), "step": r["step_path"], "kind": r["kind"],
                  "text": r["text"]} for r in rows]
        return {"run": d.run.id, "lines": lines, "next_after": lines[-1]["n"] if lines else after}

    # -- the write operations (core/orchestration/ops.py) -----------------------------------------

    async def start(self, ctx: Caller, workflow: str, feature: str, **kw: Any) -> dict[str, Any]:
        """Queue a run of ``workflow`` and its first attempt (``runs.start``)."""
        return await ops.start(self, ctx, workflow, feature, **kw)

    async def cancel(self, ctx: Caller, run_id: str) -> dict[str, Any]:
        return await ops.cancel(self, ctx, run_id)

    async def resume(self, ctx: Caller, run_id: str, **kw: Any) -> dict[str, Any]:
        return await ops.resume(self, ctx, run_id, **kw)

    async def decide(self, ctx: Caller, run_id: str, decision: str, gate: str | None = None,
                     comment: str | None = None, shown_sha256: str | None = None,
                     also: Callable[[], None] | None = None) -> dict[str, Any]:
        return await ops.decide(self, ctx, run_id, decision, gate, comment, shown_sha256, also)

    async def apply(self, ctx: Caller, run_id: str, artefact: str | None = None) -> dict[str, Any]:
        return await ops.apply(self, ctx, run_id, artefact)

    async def retry(self, ctx: Caller, run_id: str, step: str) -> dict[str, Any]:
        """Run one failed/cancelled/stopped/interrupted step again with new calls (core/orchestration/retry.py)."""
        from core.orchestration.retry import retry

        return await retry(self, ctx, run_id, step)

    async def output_of(self, ctx: Caller, run_id: str, step: str) -> dict[str, Any]:
        """One step's output so far (core/orchestration/live.py)."""
        from core.orchestration.live import output

        return await output(self, ctx, run_id, step)

    def latency_stats(self, ctx: Caller) -> builtins.list[dict[str, Any]]:
        """p50/p95/p99 of the caller's tenant's model calls per provider and model (since the engine started)."""
        suspended_read_check(self.r.state, ctx)
        return [dict(r) for r in self.latency.snapshot(ctx.tenant)]

    def settings_show(self, ctx: Caller) -> dict[str, Any]:
        from core.orchestration import audittext

        return audittext.show(self, ctx)

    def settings_set(self, ctx: Caller, audit_text: bool) -> dict[str, Any]:
        """Turn prompt/output text in the run.call audit events on or off (``tenant.manage``; audited)."""
        from core.orchestration import audittext

        return audittext.set_(self, ctx, audit_text)

    # -- the job: one attempt of a run -----------------------------------------------------------

    async def _job(self, h: JobHandle) -> dict[str, Any]:
        from core.orchestration.runloop import execute

        return await execute(self, h)
