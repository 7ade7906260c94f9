"""The run service's :class:`~core.orchestration.contracts.StepContext`: durable calls and gates.

Every ``call`` answers from the record when the same label in the same step path completed
before (``replayed=True``: not sent, not billed); otherwise it goes through
:class:`core.orchestration.calls.CallDesk`.  ``approval`` records the gate before it waits and
returns a recorded decision at once, so a gate answered before a restart is never asked again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from core.orchestration.calls import MAX_ATTEMPTS, RETRYABLE, plan_call, text_tokens
from core.orchestration.contracts import (
    AgentReply,
    AgentSpec,
    ApprovalDecision,
    Artefact,
    ChatMessage,
    ChatRequest,
    ProviderError,
    RunStop,
    StepContext,
)
from core.orchestration.records import RunData, StepRecord

if TYPE_CHECKING:
    from core.orchestration.catalog import RunPlan
    from core.orchestration.service import RunService

PREFLIGHT_INPUT_TOKENS = 2_000  # the input a fanned-out call is assumed to carry before it is built


class RunContext(StepContext):
    """One step of one run attempt (children share the run's data)."""

    def __init__(self, svc: RunService, d: RunData, plan: RunPlan, step: StepRecord) -> None:
        self.svc = svc
        self.d = d
        self.plan = plan
        self.step = step
        self.run_id = d.run.id
        self.path = step.path
        self.feature = d.run.feature
        self._children = 0

    def agent(self, name: str) -> AgentSpec:
        a = self.plan.agents.get(name)
        if a is None:
            raise RunStop(f"the workflow names agent {name!r}, which is not defined (agents: "
                          f"{', '.join(sorted(self.plan.agents))})", code="error", resumable=False)
        return a

    def agents(self) -> Sequence[AgentSpec]:
        return list(self.plan.agents.values())

    # -- calls ----------------------------------------------------------------------------------

    async def call(self, agent: str, messages: Sequence[ChatMessage], *, label: str) -> AgentReply:
        d, svc = self.d, self.svc
        done = d.completed(self.path, label)
        if done is not None:
            svc.check_stuck(d, self.path, done.response or "")
            svc.publish_call(d.run, done, replayed=True)
            return AgentReply(agent, done.response or "", done.model, done.input_tokens, done.output_tokens,
                              done.cost_micros, replayed=True)
        if d.run.cancel_asked:
            raise RunStop(f"cancelled by {d.run.reason or 'a user'}", code="cancelled", resumable=False)
        spec = self.agent(agent)
        registry, allowed = svc.model_view(d.run)
        plan = plan_call(registry, spec, text_tokens(messages), d.run.model, allowed)
        provider, provider_model = svc.provider_for(d.run, plan.model.id)
        while True:
            call, durable = await svc.desk.dispatch(d, self.step, agent, label, plan, provider)
            req = ChatRequest(provider_model, tuple(messages), plan.max_tokens, call.key)
            try:
                text, fin, latency = await svc.desk.stream(d, self.path, agent, provider, req)
            except ProviderError as exc:
                await svc.desk.fail(d, self.step, call, "failed", f"{exc.kind}: {exc}", messages)
                if exc.kind in RETRYABLE and d.attempts(self.path, label) < MAX_ATTEMPTS:
                    continue
                raise
            except asyncio.CancelledError:
                await asyncio.shield(svc.desk.fail(d, self.step, call, "cancelled", "the run was cancelled or "
                                                   "the engine stopped during the call", messages))
                raise
            await svc.desk.complete(d, self.step, call, text, fin, latency, plan.model, spec.task_kind, durable,
                                    messages)
            svc.check_stuck(d, self.path, text)
            return AgentReply(agent, text, plan.model.id, call.input_tokens, call.output_tokens, call.cost_micros)

    async def preflight(self, agents: Sequence[str]) -> None:
        d, svc = self.d, self.svc
        registry, allowed = svc.model_view(d.run)
        wanted = []
        for name in agents:
            p = plan_call(registry, self.agent(name), PREFLIGHT_INPUT_TOKENS, d.run.model, allowed)
            wanted.append((name, p.est_tokens, p.est_cost))
        svc.desk.check_budgets(d, wanted)

    # -- tree, gates, notes ---------------------------------------------------------------------

    def child(self, label: str, *, title: str) -> RunContext:
        self._children += 1
        st = self.svc.child_step(self.d, self.step, label, title, self._children)
        return RunContext(self.svc, self.d, self.plan, st)

    async def approval(self, gate: str, artefact: Artefact, *, timeout_s: float | None) -> ApprovalDecision:
        d, svc = self.d, self.svc
        gate = gate[:128]  # as stored
        ap = d.approvals.get(gate)
        if ap is None or ap.state == "pending":
            ap = await svc.ask_gate(d, self.step, gate, artefact, timeout_s)
        if ap.decision is None and ap.state == "pending":
            left = None if ap.deadline is None else (ap.deadline - svc.r.now()).total_seconds()
            waiter = svc.waiter(d.run.id, gate)
            try:
                if left is None:
                    await waiter.wait()
                elif left > 0:
                    await asyncio.wait_for(waiter.wait(), timeout=left)
                else:
                    raise TimeoutError
            except TimeoutError:
                await svc.gate_timed_out(d, self.step, gate)
            finally:
                svc.drop_waiter(d.run.id, gate)
            ap = d.approvals[gate]
        if ap.state == "timed_out":
            waited = int(((ap.deadline or ap.asked_at) - ap.asked_at) / timedelta(seconds=1))
            raise RunStop(f"approval gate {gate!r} got no decision within {waited:,} s and failed closed (a gate "
                          f"never approves by itself); resume the run to ask again: musubi runs resume {d.run.id}",
                          code="gate_timeout")
        await svc.gate_passed(d, self.step)
        return ApprovalDecision(ap.decision or "reject", ap.decided_by or "", ap.comment or "")  # type: ignore[arg-type]

    def note(self, text: str) -> None:
        self.svc.note(self.d.run, self.path, text)
