"""One durable model call of a run: checks, reservation, the streamed call, the charge (docs/runs.md).

:class:`CallDesk` is the part of the run service that talks to quotas and providers.  A call goes:

1. **dispatch** (one engine operation, no ``await`` between check and write): RBAC ``runs.start``
   for the run's creator at the run's project, the turn caps (run, step), the budgets (run, agent;
   tokens and dollars, counting the calls already in flight), the tenant's quotas through a
   reservation of the estimate, and the call's row with outcome ``sent`` — sealed into a group
   commit, and the request sent while that commit is in flight (the fsync off the critical path);
2. **the streamed call**, its deltas coalesced onto the event stream;
3. **complete**, only once the ``sent`` row is durable (queued into the run's next group commit,
   see ``CallDesk.complete``): settle the
   reservation with the usage the provider reported (the ledger row names run and step), the
   call's row with its response and usage (outcome ``ok``), the step's and run's totals, the
   ``run.call`` audit event (never text) — one group commit, so the charge and the record exist
   together or not at all;
   or **fail**: release the reservation, outcome ``failed``.

The crash window (docs/runs.md#charge-once): a kill between the provider's last byte and step 3's
commit leaves the row ``sent``; the next attempt marks it ``interrupted``, its reservation is
released, and the call is sent again under attempt + 1.  A kill after the request left but before
its ``sent`` row's commit was durable (one group commit long) leaves no row: the call is sent
again on resume under the same attempt number.  Either way at most one provider-side charge per
call in flight at the crash is not in the ledger, and nothing in the ledger is ever charged twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from core.engine.access import Caller
from core.errors import MusubiError, PermissionDenied, QuotaExceeded
from core.models.history import expected_output
from core.models.pricing import request_cost, to_micros
from core.models.registry import ModelSpec, Registry
from core.models.router import in_model_tokens, route
from core.models.tokens import chat_overhead, count_exact
from core.orchestration import audittext
from core.orchestration.contracts import (
    AgentSpec,
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Finished,
    ProviderError,
    RunStop,
    TextDelta,
)
from core.orchestration.records import CallRecord, RunData, StepRecord
from core.quotas import Charge, micros_to_usd
from core.storage.base import Update

if TYPE_CHECKING:
    from core.orchestration.service import RunService

log = logging.getLogger("musubi.engine.runs")

DEFAULT_MAX_TOKENS = 4096  # output cap per call unless the step says otherwise
RESERVATION_TTL_S = 3600
RETRYABLE = frozenset({"rate_limited", "upstream", "timeout", "connection", "malformed"})
MAX_ATTEMPTS = 2  # per call label; the provider already retried what failed before any answer
# What a completed call changes in its own row and in its run's and step's rows (the rest was written before).
ANSWER_COLS = ("outcome", "response", "input_tokens", "output_tokens", "cost_micros", "latency_ms", "stop_reason",
               "request_id", "ledger_entry", "ended_at")
TOTALS = ("input_tokens", "output_tokens", "cost_micros")


@dataclass(frozen=True)
class CallPlan:
    """The model picked for one call and what it is expected (and allowed) to cost."""

    model: ModelSpec
    input_tokens: int  # expected, in the model's tokens
    max_tokens: int
    est_tokens: int  # expected input + output (budgets)
    est_cost: int  # micro-dollars, expected (budgets)
    hold_tokens: int  # reserved against quotas: the most the call can use
    hold_cost: int


def plan_call(registry: Registry, agent: AgentSpec, text_tokens: int, model_id: str | None,
              allowed: set[str] | None, max_tokens: int = DEFAULT_MAX_TOKENS) -> CallPlan:
    """Route (or take ``model_id``), then estimate: expected for budgets, the upper bound for the reservation."""
    if model_id:
        model = registry.get(model_id)
    else:
        model = route(registry, agent.task_kind, text_tokens, allowed=allowed).choice.model
    exp_in, high_in = in_model_tokens(model, text_tokens)
    exp_in += chat_overhead(3)
    high_in += chat_overhead(3)
    cap = max(1, min(max_tokens, model.max_output))
    out = expected_output(registry, model.id, agent.task_kind, exp_in, model.max_output, None)
    exp_out = min(out.expected, cap)
    return CallPlan(
        model, exp_in, cap, exp_in + exp_out, to_micros(request_cost(model, exp_in, 0, exp_out)),
        high_in + cap, to_micros(request_cost(model, high_in, 0, cap), "high"),
    )


def text_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(count_exact(m.content) for m in messages)


class CallDesk:
    """Dispatch, complete and fail model calls of every run (held by the run service)."""

    def __init__(self, svc: RunService) -> None:
        self.svc = svc
        self.r = svc.r
        # Calls between dispatch and completion: (run, agent, tokens, micro-dollars) each, by key.
        self.inflight: dict[str, tuple[str, str, int, int]] = {}

    # -- budgets ------------------------------------------------------------------------------

    def _spent(self, d: RunData, agent: str | None) -> tuple[int, int]:
        tok, cost = (d.run.tokens, d.run.cost_micros) if agent is None else d.agent_spent(agent)
        for run_id, ag, t, c in self.inflight.values():
            if run_id == d.run.id and (agent is None or ag == agent):
                tok, cost = tok + t, cost + c
        return tok, cost

    def check_budgets(self, d: RunData, wanted: Sequence[tuple[str, int, int]]) -> None:
        """Raise ``RunStop(budget)`` unless the calls ``wanted`` ((agent, tokens, micro-dollars) each) fit."""
        run = d.run
        tok = sum(t for _, t, _ in wanted)
        cost = sum(c for _, _, c in wanted)
        spent_t, spent_c = self._spent(d, None)
        resume = f"raise it and resume: musubi runs resume {run.id} --budget-tokens N / --budget-usd D"
        if run.budget_tokens is not None and spent_t + tok > run.budget_tokens:
            raise RunStop(f"run budget: {spent_t:,} tokens used or in flight + {tok:,} expected would pass the "
                          f"run's budget of {run.budget_tokens:,} tokens; no call was sent. {resume}", code="budget")
        if run.budget_micros is not None and spent_c + cost > run.budget_micros:
            raise RunStop(f"run budget: ${micros_to_usd(spent_c)} spent or in flight + ${micros_to_usd(cost)} "
                          f"expected would pass the run's budget of ${micros_to_usd(run.budget_micros)}; no call "
                          f"was sent. {resume}", code="budget")
        per: dict[str, tuple[int, int]] = {}
        for ag, t, c in wanted:
            t0, c0 = per.get(ag, (0, 0))
            per[ag] = (t0 + t, c0 + c)
        for ag, (t, c) in per.items():
            b = self.svc.agent_budget(run.id, ag)
            if b is None:
                continue
            st, sc = self._spent(d, ag)
            if b.tokens is not None and st + t > b.tokens:
                raise RunStop(f"agent budget: agent {ag} has used {st:,} tokens; {t:,} more expected would pass its "
                              f"budget of {b.tokens:,} tokens (the workflow's agent_budget); no call was sent.",
                              code="budget")
            if b.cost_micros is not None and sc + c > b.cost_micros:
                raise RunStop(f"agent budget: agent {ag} has spent ${micros_to_usd(sc)}; ${micros_to_usd(c)} more "
                              f"expected would pass its budget of ${micros_to_usd(b.cost_micros)}; no call was sent.",
                              code="budget")

    # -- dispatch -------------------------------------------------------------------------------

    def owner(self, d: RunData) -> Caller:
        """The run's creator, as whom every call is checked and charged."""
        return Caller(d.run.created_by, d.run.created_by, d.run.tenant, d.run.project)

    async def dispatch(self, d: RunData, st: StepRecord, agent: str, label: str, plan: CallPlan,
                       provider: ChatProvider) -> tuple[CallRecord, asyncio.Future[None] | None]:
        """Check everything, reserve, record the call as sent — or raise RunStop.

        Answers the call and the future of the group commit that makes its ``sent`` row durable,
        not awaited: the request goes out while the journal is synced (no ``await`` happens here
        on the way out, so the commit loop cannot even start the write before the caller sends).
        The caller hands the future to :meth:`complete`, which charges nothing before it is done.
        """
        run = d.run
        owner = self.owner(d)

        def op() -> CallRecord | RunStop:
            self.r.require(owner, "runs.start", project=run.project)
            try:
                self._caps(d, st, agent, plan)
            except RunStop as stop:  # not an error of the operation: handed back, raised outside it
                return stop
            res = self.svc.usage.usage_reserve(owner, plan.hold_tokens, 1, plan.hold_cost, RESERVATION_TTL_S)
            now = self.r.now()
            attempt = d.attempts(st.path, label) + 1
            key = f"{run.id}:{st.path}:{label}:{attempt}"
            call = CallRecord(key, run.id, run.tenant, st.path, label, attempt, agent, plan.model.id,
                              provider.settings.name, "sent", now, plan.est_tokens, plan.est_cost,
                              reservation_id=res["reservation_id"])
            d.add_call(call)
            self.inflight[key] = (run.id, agent, plan.est_tokens, plan.est_cost)
            run.turns += 1
            st.turns += 1
            st.model = plan.model.id
            self.svc.write_new(call)
            self.svc.save_counters(run, ("turns",), st, ("turns", "model"))
            return call

        try:
            out, durable = self.r.queue(owner, "run.call", f"run:{run.id}", op)
        except (QuotaExceeded, PermissionDenied) as exc:
            if self.r.refusal is not None:  # the denial's audit event, durable before the run stops
                await asyncio.shield(self.r.refusal)  # the batch's shared future: a cancelled run must not cancel it
            what = "quota" if isinstance(exc, QuotaExceeded) else "permission"
            raise RunStop(f"{what}: {exc.message}", code=what) from None
        if isinstance(out, RunStop):
            if durable is not None:
                await asyncio.shield(durable)
            raise out
        return out, durable

    def _caps(self, d: RunData, st: StepRecord, agent: str, plan: CallPlan) -> None:
        run = d.run
        if run.turns + 1 > run.max_turns:
            raise RunStop(f"turn cap: the run has made {run.turns} model calls, its cap is {run.max_turns}; "
                          f"raise it and resume: musubi runs resume {run.id} --max-turns N", code="turn_cap")
        if st.turns + 1 > run.max_step_turns:
            raise RunStop(f"turn cap: step {st.path} has made {st.turns} model calls, the cap per step is "
                          f"{run.max_step_turns}; raise it and resume: musubi runs resume {run.id} "
                          "--max-step-turns N", code="turn_cap")
        self.check_budgets(d, [(agent, plan.est_tokens, plan.est_cost)])

    # -- the call --------------------------------------------------------------------------------

    async def stream(self, d: RunData, path: str, agent: str, provider: ChatProvider,
                     request: ChatRequest) -> tuple[str, Finished, float]:
        """Send it; (text, the final usage, latency in ms).  Deltas go to the event stream, coalesced."""
        t0 = time.perf_counter()
        parts: list[str] = []
        fin: Finished | None = None
        async for ev in provider.stream(request):
            if isinstance(ev, TextDelta):
                parts.append(ev.text)
                self.svc.output(d.run, path, agent, ev.text)
            elif isinstance(ev, Finished):
                fin = ev
        if fin is None:
            raise ProviderError("malformed", "the stream ended without its final usage",
                                provider=provider.settings.name,
                                answered=bool(parts))
        return "".join(parts), fin, (time.perf_counter() - t0) * 1000.0

    async def complete(self, d: RunData, st: StepRecord, call: CallRecord, text: str, fin: Finished,
                       latency_ms: float, model: ModelSpec, task_kind: str,
                       durable: asyncio.Future[None] | None = None,
                       prompt: Sequence[ChatMessage] | None = None) -> None:
        """Charge what the provider reported and record the response, together (one group commit).

        Only once ``durable`` (the commit of the call's ``sent`` row, from :meth:`dispatch`) is
        done: a charge never reaches the journal ahead of the row that names its reservation.  If
        that commit failed, its error is raised and nothing is charged (the engine refused the
        call's record).  The recording is a callback of that future, not a step of this task, so
        a cancel arriving while it is in flight cannot split an answered call from its charge.

        Queued, not awaited: the charge and the record join the open batch, and the next call's
        ``sent`` row and whatever the run does next go into the same or a later group commit, so
        a sequential run pays one group commit per call, overlapped with the next request.  A
        seal scheduled on the next loop turn commits it even when nothing follows; a crash before
        that commit is the crash window of docs/runs.md (the call is re-sent under its next
        attempt).  Steps' ends, gates and the run's end await a commit at or after it.
        """
        def recorded(f: asyncio.Future[None] | None) -> None:
            if f is None or not f.cancelled() and f.exception() is None:
                self._record(d, st, call, text, fin, latency_ms, model, task_kind, prompt)
            else:  # the engine refused the call's row (and reloaded its state): nothing of it is held
                self.inflight.pop(call.key, None)

        seal = self.r.committer.seal
        if durable is None or durable.done():
            recorded(durable)
            if durable is not None:
                durable.result()  # raises the commit's error: nothing was charged
        else:
            durable.add_done_callback(recorded)
            try:
                await asyncio.shield(durable)
            except asyncio.CancelledError:
                durable.add_done_callback(lambda _f: seal())  # after `recorded`: commit what it queued
                raise
        # Sealed on the next loop turn, after this task's next dispatch (no await before it) added
        # its `sent` row to the same batch; alone when nothing follows.
        asyncio.get_running_loop().call_soon(seal)

    def _record(self, d: RunData, st: StepRecord, call: CallRecord, text: str, fin: Finished, latency_ms: float,
                model: ModelSpec, task_kind: str, prompt: Sequence[ChatMessage] | None = None) -> None:
        run = d.run
        owner = self.owner(d)
        i, o = fin.usage.input_tokens, fin.usage.output_tokens
        cost = to_micros(request_cost(model, i, 0, o))

        def op() -> None:
            now = self.r.now()
            entry = self._settle(owner, call, Charge(i + o, 1, cost), model.id, i, o, task_kind)
            call.outcome, call.response, call.input_tokens, call.output_tokens = "ok", text, i, o
            call.cost_micros, call.latency_ms, call.stop_reason = cost, round(latency_ms, 3), fin.stop_reason
            call.request_id, call.ledger_entry, call.ended_at = fin.request_id, entry, now
            d.call_ok(call)
            self.inflight.pop(call.key, None)
            run.input_tokens += i
            run.output_tokens += o
            run.cost_micros += cost
            st.input_tokens += i
            st.output_tokens += o
            st.cost_micros += cost
            st.latency_ms = call.latency_ms
            self.svc.write_call(call, ANSWER_COLS)
            self.svc.save_counters(run, TOTALS, st, (*TOTALS, "latency_ms"))
            self.r.audit(run.tenant, owner, "run.call", f"run:{run.id}", details={
                "run": run.id, "step": st.path, "label": call.label, "attempt": call.attempt, "agent": call.agent,
                "model": model.id, "provider": call.provider, "input_tokens": i, "output_tokens": o,
                "cost_usd": micros_to_usd(cost), "latency_ms": call.latency_ms, "outcome": "ok",
                "request_id": fin.request_id, "ledger_entry": entry,
                **audittext.text_details(self.svc, run.tenant, prompt, text),  # only with the tenant's switch on
            })
            self.svc.log(run, st.path, "call", f"{call.agent} on {model.id}: {i:,} in + {o:,} out tokens, "
                         f"${micros_to_usd(cost)}, {call.latency_ms:.0f} ms")

        # Synchronous, so a cancel arriving now cannot split it: once the provider answered, it is recorded.
        op()
        self.r.committer.on_commit(partial(self.svc.publish_call, run, call, replayed=False))
        self.svc.latency.record(run.tenant, call.provider or "-", model.id, latency_ms)

    def _settle(self, owner: Caller, call: CallRecord, charge: Charge, model: str, i: int, o: int,
                task_kind: str) -> int:
        """Close the reservation and charge the reported usage (never refused: the provider already did the work)."""
        usage = self.svc.usage
        rid = call.reservation_id
        res = self.r.state.reservations.get(rid) if rid else None
        if res is not None:
            self.r.state.drop_reservation(res.id)
            self.r.write(Update("reservations", {"state": "settled", "closed_at": self.r.now()},
                                {"reservation_id": res.id}))
        entry = usage._charge(owner, charge, model, i, o, "settle", rid if res else None, task_kind,
                              run=(call.run_id, call.step_path))
        return int(entry["entry_id"])

    async def fail(self, d: RunData, st: StepRecord, call: CallRecord, outcome: str, error: str,
                   prompt: Sequence[ChatMessage] | None = None) -> None:
        """Release the reservation; record the attempt as ``failed`` / ``cancelled`` (nothing charged)."""
        run = d.run
        owner = self.owner(d)

        def op() -> None:
            self.release(call)
            call.outcome, call.error, call.ended_at = outcome, error, self.r.now()
            self.svc.write_call(call)
            self.r.audit(run.tenant, owner, "run.call", f"run:{run.id}", "error", details={
                "run": run.id, "step": st.path, "label": call.label, "attempt": call.attempt, "agent": call.agent,
                "model": call.model, "provider": call.provider, "outcome": outcome, "error": error[:500],
                **audittext.text_details(self.svc, run.tenant, prompt, None),
            })
            self.svc.log(run, st.path, "call", f"{call.agent} on {call.model}: {outcome}: {error[:300]}")

        try:
            await asyncio.shield(self.r.run(None, "run.call", f"run:{run.id}", op))
        except MusubiError:
            log.exception("could not record the failed call %s", call.key)
        self.svc.publish_call(d.run, call, replayed=False)

    def release(self, call: CallRecord) -> None:
        """Inside an operation: free the call's reservation, if still open, and its in-flight amount."""
        self.inflight.pop(call.key, None)
        rid = call.reservation_id
        if rid and rid in self.r.state.reservations:
            self.r.state.drop_reservation(rid)
            self.r.write(Update("reservations", {"state": "released", "closed_at": self.r.now()},
                                {"reservation_id": rid}))


def call_json(run_tenant: str, call: CallRecord, replayed: bool) -> dict[str, Any]:
    return {
        "type": "run.call", "tenant": run_tenant, "run": call.run_id, "step": call.step_path, "agent": call.agent,
        "model": call.model, "input_tokens": call.input_tokens, "output_tokens": call.output_tokens,
        "cost_usd": micros_to_usd(call.cost_micros), "latency_ms": call.latency_ms or 0.0,
        "outcome": call.outcome, "replayed": replayed,
    }
