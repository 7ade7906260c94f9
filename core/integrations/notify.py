"""Run, approval, quota and coverage notifications to Slack and Teams (docs/integrations.md#notifications).

The engine's event bus hands every committed event to :meth:`Notifications.tap` (a dict lookup
and a ``put_nowait``: it never waits, never raises, so a notification can neither block nor
fail the run that caused it).  One background task per engine takes the queue in order, reads
the tenant's opt-in (the ``events`` setting of ``slack`` / ``teams``), builds the message and
sends it through :meth:`IntegrationService.deliver`, which audits every attempt
(``integration.notify``: system, target, outcome, the event; never a secret or the text).

Events (the names a tenant opts into, ``events=run_failed,approval``):

====================  ==========================================================
``run_finished``      a run ended ``done``
``run_failed``        a run ended ``failed``
``run_stopped``       a run stopped (resumable), was cancelled or interrupted
``approval``          a gate waits for a decision (Slack: approve/reject buttons)
``quota_alert``       a quota crossed one of its alert thresholds
``coverage_low``      a project's trace coverage fell across ``coverage_min`` (percent)
====================  ==========================================================

Retries: a failure where the vendor cannot have acted (rate limited, no connection, a 5xx)
is tried again after :attr:`Notifications.retry_delays`; a timeout is not (Slack has no
de-duplication key, a retry could post twice), nor an auth or validation error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import MusubiError
from core.integrations.contracts import NOTIFIERS, Message

if TYPE_CHECKING:
    from core.integrations.service import IntegrationService

log = logging.getLogger("musubi.integrations.notify")

EVENTS = ("run_finished", "run_failed", "run_stopped", "approval", "quota_alert", "coverage_low")
QUEUE_SIZE = 1000
RETRYABLE = ("rate_limited", "connection")
_RUN_EVENT = {"done": "run_finished", "failed": "run_failed", "stopped": "run_stopped", "cancelled": "run_stopped",
              "interrupted": "run_stopped"}
_SEVERITY = {"run_finished": "good", "run_failed": "danger", "run_stopped": "warning", "approval": "warning",
             "quota_alert": "warning", "coverage_low": "danger"}
ENGINE_ACTOR = "engine"


def parse_events(raw: str | None) -> set[str]:
    """The ``events`` setting: names separated by commas or spaces; ``all`` means every event."""
    names = {n.strip() for n in (raw or "").replace(" ", ",").split(",") if n.strip()}
    return set(EVENTS) if "all" in names else names & set(EVENTS)


def check_events(raw: str) -> str | None:
    """Why an ``events`` setting is wrong (unknown names), or None."""
    names = {n.strip() for n in raw.replace(" ", ",").split(",") if n.strip()}
    bad = sorted(names - set(EVENTS) - {"all"})
    return f"unknown notification events {', '.join(bad)}; choose from {', '.join(EVENTS)} or all." if bad else None


@dataclass(frozen=True)
class Notice:
    """One thing worth telling a tenant's channels: the event name, its message, a dedupe key."""

    tenant: str
    event: str
    message: Message
    key: str
    project: str | None = None
    data: dict[str, Any] | None = None  # coverage_low: {"coverage", "previous"}, judged per system's coverage_min


def notice_for(tenant: str, ev: dict[str, Any]) -> Notice | None:
    """The notice a bus event gives, if any (pure: tested on its own)."""
    kind = ev.get("type")
    if kind == "run.state":
        run = ev.get("run") or {}
        name = _RUN_EVENT.get(str(run.get("state")))
        if name is None:
            return None
        rid = str(run.get("id"))
        facts = [("Run", rid), ("Workflow", str(run.get("workflow", ""))), ("State", str(run.get("state")))]
        if run.get("stop_code"):
            facts.append(("Code", str(run["stop_code"])))
        facts += [("Tokens", str(run.get("tokens", 0))), ("Cost", f"${run.get('cost_usd', 0)}")]
        title = {"run_finished": "Run finished", "run_failed": "Run failed", "run_stopped": "Run stopped"}[name]
        text = str(run.get("feature") or "")
        if run.get("reason"):
            text += f"\n{run['reason']}"
        msg = Message(f"{title}: {rid}", text[:2000], tuple(facts), severity=_SEVERITY[name])
        return Notice(tenant, name, msg, f"run:{rid}:{run.get('state')}:{run.get('finished_at') or ''}",
                      run.get("project"))
    if kind == "run.gate":
        ap = ev.get("approval") or {}
        if ap.get("state") != "pending":
            return None
        rid, gate = str(ev.get("run")), str(ap.get("gate"))
        sha = str(ap.get("shown_sha256") or "")
        value = f"{rid}|{gate}|{sha}"
        msg = Message(f"Approval needed: run {rid}", f"Gate *{gate}* (step {ap.get('step', '')}) waits for a "
                      f"decision. Or: `musubi runs approve {rid}` / `musubi runs reject {rid}`.",
                      (("Run", rid), ("Gate", gate), ("Artefact", str(ap.get("artefact") or "")),
                       ("Content sha256", sha[:12])),
                      buttons=(("Approve", "approve", value), ("Reject", "reject", value)), severity="warning")
        return Notice(tenant, "approval", msg, f"gate:{rid}:{gate}:{ap.get('asked_at', '')}")
    if kind == "quota.alert":
        thr = ev.get("threshold")
        pct = f"{round(float(thr) * 100)}%" if isinstance(thr, (int, float)) else str(thr)
        msg = Message(f"Quota alert: {ev.get('metric')} at {pct}",
                      f"{ev.get('used')} of {ev.get('limit')} used this {ev.get('period')} ({ev.get('scope')}"
                      + (f", user {ev['user']}" if ev.get("user") else "") + ").",
                      (("Quota", str(ev.get("quota_id"))), ("Threshold", pct), ("Window", str(ev.get("window_start")))),
                      severity="warning")
        return Notice(tenant, "quota_alert", msg, f"quota:{ev.get('quota_id')}:{ev.get('window_start')}:{thr}")
    return None


def coverage_message(project: str, coverage: float, previous: float, minimum: float) -> Message:
    return Message(f"Trace coverage below {minimum:g}%: {project}",
                   f"Coverage fell from {previous:g}% to {coverage:g}%; the CI check "
                   f"`musubi trace check --min-coverage {minimum:g}` now fails.",
                   (("Project", project), ("Coverage", f"{coverage:g}%"), ("Was", f"{previous:g}%"),
                    ("Threshold", f"{minimum:g}%")), severity="danger")


def coverage_min(settings: dict[str, str]) -> float | None:
    """The ``coverage_min`` setting (percent), None when unset or not a number in 0..100."""
    try:
        v = float(settings.get("coverage_min", ""))
    except ValueError:
        return None
    return v if 0 <= v <= 100 else None


class Notifications:
    """The engine's notification queue and its one sender task."""

    def __init__(self, integrations: IntegrationService) -> None:
        self.integrations = integrations
        self.retry_delays: tuple[float, ...] = (2.0, 10.0)
        self._queue: asyncio.Queue[Notice] | None = None
        self._task: asyncio.Task[None] | None = None
        self._sent: OrderedDict[str, None] = OrderedDict()  # run.state is published on every save of the run
        self.dropped = 0
        self._closed = False  # the engine is stopping: nothing new is sent
        self._coverage: dict[tuple[str, str], float] = {}  # (tenant, project) -> overall coverage last seen

    def coverage(self, tenant: str, project: str | None, overall: float) -> None:
        """A trace summary was computed (``musubi trace check``, the Trace screen): queue a check for a drop."""
        if not project:
            return
        key = (tenant, project)
        previous = self._coverage.get(key)
        self._coverage[key] = overall
        if previous is None or overall >= previous:
            return  # only a fall is news; the first look after a start has nothing to compare with
        msg = Message("coverage", "")  # built per system in _handle: each has its own coverage_min
        self._enqueue(Notice(tenant, "coverage_low", msg, f"cov:{tenant}:{project}:{previous}:{overall}", project,
                             {"coverage": overall, "previous": previous}))

    def tap(self, tenant: str, event: dict[str, Any]) -> None:
        """Bus listener: queue a notice; never waits, never raises."""
        try:
            notice = notice_for(tenant, event)
            if notice is None or notice.key in self._sent:
                return
            self._enqueue(notice)
        except Exception:  # a listener must never break the publisher (the run)
            log.exception("notification tap failed for a %s event", event.get("type"))

    def _enqueue(self, notice: Notice) -> None:
        if self._closed:
            return
        self._sent[notice.key] = None
        while len(self._sent) > 10_000:
            self._sent.popitem(last=False)
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_SIZE)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="musubi-notify")
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("notification queue full (%d); dropped %s for %s", QUEUE_SIZE, notice.event, notice.tenant)

    async def idle(self) -> None:
        """Until every queued notice was handled (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            notice = await self._queue.get()
            try:
                await self._handle(notice)
            except Exception:
                log.exception("notification %s for %s failed", notice.event, notice.tenant)
            finally:
                self._queue.task_done()

    def targets(self, tenant: str, event: str) -> list[tuple[str, str | None, dict[str, str]]]:
        """(system, channel or None, settings) for each notifier of ``tenant`` that opted into ``event``."""
        settings = self.integrations.store.settings(tenant)
        out = []
        for system in NOTIFIERS:
            mine = settings.get(system) or {}
            if event in parse_events(mine.get("events")):
                out.append((system, mine.get(f"channel_{event}") or None, mine))
        return out

    async def _handle(self, notice: Notice) -> None:
        targets = await asyncio.to_thread(self.targets, notice.tenant, notice.event)
        for system, channel, settings in targets:
            if notice.data is not None:  # coverage_low: only a fall across this system's threshold
                minimum = coverage_min(settings)
                cov, prev = float(notice.data["coverage"]), float(notice.data["previous"])
                if minimum is None or not (prev >= minimum > cov):
                    continue
                notice = Notice(notice.tenant, notice.event,
                                coverage_message(notice.project or "", cov, prev, minimum), notice.key,
                                notice.project, notice.data)
            await self._send(notice, system, channel)

    async def _send(self, notice: Notice, system: str, channel: str | None) -> None:
        message = notice.message
        if system == "teams" and message.buttons:
            # Workflows webhooks cannot call back: Teams shows the commands instead of buttons.
            message = Message(message.title, message.text, message.facts, message.link, (), message.severity)
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.integrations.deliver(notice.tenant, ENGINE_ACTOR, system, message, channel,
                                                event=notice.event, attempt=attempt)
                return
            except MusubiError as exc:
                kind = str(getattr(exc, "kind", exc.code))
                status = getattr(exc, "status", None)
                again = kind in RETRYABLE or (kind == "upstream" and isinstance(status, int) and status >= 500)
                if not again:
                    return
        log.warning("notification %s to %s for %s gave up after %d attempts", notice.event, system, notice.tenant,
                    1 + len(self.retry_delays))
