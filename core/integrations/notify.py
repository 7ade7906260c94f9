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
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.errors import MusubiError
from core.integrations.botauth import bot_configured
from core.integrations.contracts import NOTIFIERS, Message
from core.integrations.persist import ROUTE, NoticeStore, message_of

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
    """The engine's notification queue (durable in ``notify_queue``) and its one sender task."""

    def __init__(self, integrations: IntegrationService, store: NoticeStore | None = None) -> None:
        self.integrations = integrations
        self.store = store if store is not None else NoticeStore()  # the engine passes its durable one
        self.retry_delays: tuple[float, ...] = (2.0, 10.0)
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._overflow = False  # the in-memory queue was full: the sender re-reads the store when it empties
        self.dropped = 0
        self._closed = False  # the engine is stopping: nothing new is sent
        self._coverage: dict[tuple[str, str], float] = {}  # (tenant, project) -> overall coverage last seen

    async def start(self) -> None:
        """At engine start: settle what a stop left half-done, then send what is still queued."""
        try:
            await self.store.recover()
        except Exception:  # the engine starts anyway; the rows stay as they were for the next start
            log.exception("could not settle the notification queue at start")
            return
        pending = self.store.pending()
        if pending:
            log.info("resuming %d queued notification(s)", len(pending))
        for tenant, key in pending:
            self._wake(tenant, key)

    def coverage(self, tenant: str, project: str | None, overall: float) -> None:
        """A trace summary was computed (``musubi trace check``, the Trace screen): queue a check for a drop."""
        if not project:
            return
        key = (tenant, project)
        previous = self._coverage.get(key)
        self._coverage[key] = overall
        if previous is None or overall >= previous:
            return  # only a fall is news; the first look after a start has nothing to compare with
        msg = Message("coverage", "")  # built per system when routed: each has its own coverage_min
        self._enqueue(Notice(tenant, "coverage_low", msg, f"cov:{tenant}:{project}:{previous}:{overall}", project,
                             {"coverage": overall, "previous": previous}))

    def tap(self, tenant: str, event: dict[str, Any]) -> None:
        """Bus listener: queue a notice; never waits, never raises."""
        try:
            notice = notice_for(tenant, event)
            if notice is None or self.store.known(tenant, notice.key):
                return
            self._enqueue(notice)
        except Exception:  # a listener must never break the publisher (the run)
            log.exception("notification tap failed for a %s event", event.get("type"))

    def _enqueue(self, notice: Notice) -> None:
        if self._closed or self.store.known(notice.tenant, notice.key):
            return
        self.store.add(notice.tenant, notice.key, notice.event, notice.message, notice.project, notice.data)
        self._wake(notice.tenant, notice.key)

    def _wake(self, tenant: str, key: str) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_SIZE)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="musubi-notify")
        try:
            self._queue.put_nowait((tenant, key))
        except asyncio.QueueFull:  # kept in the store: sent once the queue has room
            self._overflow = True
            self.dropped += 1
            log.warning("notification queue full (%d); %s for %s waits in notify_queue", QUEUE_SIZE, key, tenant)

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
            if self._queue.empty() and self._overflow:
                self._overflow = False
                for tenant, key in self.store.pending():
                    self._wake(tenant, key)
            tenant, key = await self._queue.get()
            try:
                await self._handle(tenant, key)
            except Exception:
                log.exception("notification %s for %s failed", key, tenant)
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

    async def _route(self, tenant: str, key: str, row: dict[str, Any]) -> None:
        """Decide which systems get the notice, and what each shows; durable before anything is sent."""
        event, message = str(row["event"]), message_of(row["message"])
        data = json.loads(row["data"]) if row.get("data") else None
        chosen: list[tuple[str, str | None, Message]] = []
        for system, channel, settings in await asyncio.to_thread(self.targets, tenant, event):
            shown = message
            if data is not None:  # coverage_low: only a fall across this system's threshold
                minimum = coverage_min(settings)
                cov, prev = float(data["coverage"]), float(data["previous"])
                if minimum is None or not (prev >= minimum > cov):
                    continue
                shown = coverage_message(str(row.get("project") or ""), cov, prev, minimum)
            if system == "teams" and shown.buttons and not bot_configured(settings):
                # Workflows webhooks cannot call back: without a bot, Teams shows the commands instead of buttons.
                shown = Message(shown.title, shown.text, shown.facts, shown.link, (), shown.severity)
            chosen.append((system, channel, shown))
        await self.store.route(tenant, key, chosen)

    async def _handle(self, tenant: str, key: str) -> None:
        unrouted = self.store.rows.get((tenant, key, ROUTE))
        if unrouted is not None and unrouted["state"] == "new":
            await self._route(tenant, key, unrouted)
        for row in sorted(self.store.deliveries(tenant, key), key=lambda r: r["system"]):
            if row["state"] == "queued":
                await self._send(row)

    async def _send(self, row: dict[str, Any]) -> None:
        tenant, key, system = row["tenant_id"], row["notice_key"], row["system"]
        message, event = message_of(row["message"]), row["event"]
        most = 1 + len(self.retry_delays)
        while not self._closed:
            attempt = int(row["attempts"]) + 1
            if attempt > most:
                await self.store.mark(tenant, key, system, "failed")
                return
            wait = (row["next_try"] - self.store.now()).total_seconds() if row.get("next_try") else 0.0
            if wait > 0:
                await asyncio.sleep(wait)
            await self.store.mark(tenant, key, system, "sending", attempts=attempt)  # durable before the call
            try:
                await self.integrations.deliver(tenant, ENGINE_ACTOR, system, message, row.get("target"),
                                                event=event, attempt=attempt)
            except MusubiError as exc:
                kind = str(getattr(exc, "kind", exc.code))
                status = getattr(exc, "status", None)
                again = kind in RETRYABLE or (kind == "upstream" and isinstance(status, int) and status >= 500)
                why = f"{kind}: {exc.message}"
                if again and attempt < most:
                    delay = timedelta(seconds=self.retry_delays[attempt - 1])
                    await self.store.mark(tenant, key, system, "queued", next_try=self.store.now() + delay, error=why)
                    continue
                await self.store.mark(tenant, key, system, "failed", error=why)
                if again:
                    log.warning("notification %s to %s for %s gave up after %d attempts", event, system, tenant, most)
                return
            except Exception as exc:  # a bug in a connector: recorded, never retried (it could have posted)
                await self.store.mark(tenant, key, system, "failed", error=f"{type(exc).__name__}: {exc}"[:300])
                raise
            await self.store.mark(tenant, key, system, "sent")
            return
