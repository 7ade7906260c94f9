"""Durable notification queue and webhook state (migration 010; docs/schema.md#integrations).

:class:`NoticeStore` keeps the rows of ``notify_queue`` in memory (loaded at engine start) and,
in the engine (:class:`EngineNoticeStore`), writes every change through the group commit, so a
restart, even after ``kill -9``, resumes what was queued and never sends a message twice:

- a notice is first one row with ``system = '*'`` (state ``new``), queued by the event that made
  it; routing replaces it, in one commit, with a row per opted-in system (state ``queued``), or
  marks it ``skipped`` when no system wants it (kept: it still de-duplicates);
- before each attempt the row is marked ``sending`` (attempts + 1) and that is durable before the
  vendor is called; then ``sent``, ``queued`` again with ``next_try`` (a retry the vendor cannot
  have acted on) or ``failed`` with ``last_error``;
- at start a row still ``sending`` is marked ``failed`` ("the engine stopped during the send"),
  never re-sent: the vendor may have posted it and Slack has no de-duplication key.

:class:`WebhookState` holds GitLab's delivery keys (``webhook_deliveries``) and the pipeline
runs its webhooks reported (``webhook_pipelines``), written before the webhook is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.integrations.contracts import Message, PipelineRun
from core.storage.base import Delete, Insert, Mutation, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner

log = logging.getLogger("musubi.integrations.notify")

ROUTE = "*"  # the system of a notice not yet routed to its systems
DONE_STATES = ("sent", "failed", "skipped")
KEEP_DONE = timedelta(days=30)  # finished rows kept this long (they de-duplicate re-published events)
KEEP_DELIVERIES = 1000  # GitLab delivery keys remembered per tenant
STOPPED = "the engine stopped during the send; not re-sent (the vendor may have posted it, a retry could post twice)"

Key = tuple[str, str, str]  # (tenant, notice key, system)


def message_json(m: Message) -> str:
    """A message as the ``message`` column holds it (never a secret: what the channel will show)."""
    return json.dumps({"title": m.title, "text": m.text, "facts": [list(f) for f in m.facts],
                       "link": list(m.link) if m.link else None, "buttons": [list(b) for b in m.buttons],
                       "severity": m.severity}, ensure_ascii=False)


def message_of(raw: str) -> Message:
    d = json.loads(raw)
    link = d.get("link")
    return Message(str(d["title"]), str(d["text"]), tuple((str(a), str(b)) for a, b in d.get("facts") or []),
                   (str(link[0]), str(link[1])) if link else None,
                   tuple((str(a), str(b), str(c)) for a, b, c in d.get("buttons") or []),
                   str(d.get("severity", "info")))


class NoticeStore:
    """The queue's rows in memory; this base class keeps them only there (unit tests use it as is)."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.rows: dict[Key, dict[str, Any]] = {}
        for r in rows:
            self.rows[(r["tenant_id"], r["notice_key"], r["system"])] = dict(r)
        self._notices = {(t, k) for t, k, _s in self.rows}

    # -- writing (the engine's store makes each durable) -------------------------------------

    def _queue(self, *mutations: Mutation) -> None:
        """Write without waiting (from a bus tap: never blocks)."""

    async def _commit(self, *mutations: Mutation) -> None:
        """Write, durable on return."""

    def now(self) -> datetime:
        from core.engine.runner import utcnow

        return utcnow()

    # -- the queue ---------------------------------------------------------------------------

    def known(self, tenant: str, key: str) -> bool:
        """Whether this notice was queued before (re-published events notify once, across restarts too)."""
        return (tenant, key) in self._notices

    def add(self, tenant: str, key: str, event: str, message: Message, project: str | None,
            data: dict[str, Any] | None) -> None:
        """A new notice, not yet routed (queued for the next group commit); one already known is ignored."""
        if self.known(tenant, key):  # its row exists: a second insert would be refused by the database
            return
        now = self.now()
        row = {"tenant_id": tenant, "notice_key": key, "system": ROUTE, "event": event, "target": None,
               "project": project, "message": message_json(message), "data": json.dumps(data) if data else None,
               "state": "new", "attempts": 0, "next_try": None, "last_error": None, "created_at": now,
               "updated_at": now}
        self.rows[(tenant, key, ROUTE)] = row
        self._notices.add((tenant, key))
        self._queue(Insert("notify_queue", row))

    async def route(self, tenant: str, key: str, targets: list[tuple[str, str | None, Message]]) -> None:
        """Replace the unrouted row by one per (system, target, message), or mark it ``skipped``."""
        base = self.rows.get((tenant, key, ROUTE))
        if base is None:
            return
        now = self.now()
        where = {"tenant_id": tenant, "notice_key": key, "system": ROUTE}
        if not targets:
            base.update(state="skipped", updated_at=now)
            await self._commit(Update("notify_queue", {"state": "skipped", "updated_at": now}, where))
            return
        del self.rows[(tenant, key, ROUTE)]
        muts: list[Mutation] = [Delete("notify_queue", where)]
        for system, target, message in targets:
            row = {**base, "system": system, "target": target, "message": message_json(message), "state": "queued",
                   "next_try": now, "updated_at": now}
            self.rows[(tenant, key, system)] = row
            muts.append(Insert("notify_queue", row))
        await self._commit(*muts)

    async def mark(self, tenant: str, key: str, system: str, state: str, *, attempts: int | None = None,
                   next_try: datetime | None = None, error: str | None = None) -> None:
        row = self.rows.get((tenant, key, system))
        if row is None:
            return
        values: dict[str, Any] = {"state": state, "updated_at": self.now(), "next_try": next_try}
        if attempts is not None:
            values["attempts"] = attempts
        if error is not None:
            values["last_error"] = error[:1000]
        row.update(values)
        await self._commit(Update("notify_queue", values, {"tenant_id": tenant, "notice_key": key, "system": system}))

    def pending(self) -> list[tuple[str, str]]:
        """(tenant, key) of every notice with something left to do, oldest first."""
        todo = [r for r in self.rows.values() if r["state"] in ("new", "queued")]
        todo.sort(key=lambda r: (r["created_at"], r["notice_key"]))
        return list(dict.fromkeys((r["tenant_id"], r["notice_key"]) for r in todo))

    def deliveries(self, tenant: str, key: str) -> list[dict[str, Any]]:
        return [r for (t, k, s), r in self.rows.items() if t == tenant and k == key and s != ROUTE]

    async def recover(self) -> None:
        """At start: rows left ``sending`` by a stop are failed, not re-sent; old finished rows are dropped."""
        for (t, k, s), r in list(self.rows.items()):
            if r["state"] == "sending":
                await self.mark(t, k, s, "failed", error=STOPPED)
        cutoff = self.now() - KEEP_DONE
        old = [key for key, r in self.rows.items() if r["state"] in DONE_STATES and r["updated_at"] < cutoff]
        for key in old:
            del self.rows[key]
        if old:
            await self._commit(*(Delete("notify_queue", {"tenant_id": t, "notice_key": k, "system": s})
                                 for t, k, s in old))


class EngineNoticeStore(NoticeStore):
    """The engine's queue: every change through the runner's group commit (journal first)."""

    def __init__(self, runner: OpRunner, rows: Iterable[dict[str, Any]]) -> None:
        super().__init__(rows)
        self.r = runner

    def now(self) -> datetime:
        return self.r.now()

    def _queue(self, *mutations: Mutation) -> None:
        # A bus tap may run inside another operation (which must not be re-entered): write on the next
        # turn of the loop, in the next group commit.
        asyncio.get_running_loop().call_soon(self._write_now, mutations)

    def _write_now(self, mutations: tuple[Mutation, ...]) -> None:
        try:
            self.r.queue(None, "integration.notify", "notify_queue", lambda: self.r.write(*mutations))
        except Exception:  # never raise into the loop; the log says what was not kept
            log.exception("could not queue a notification row")

    async def _commit(self, *mutations: Mutation) -> None:
        await self.r.run(None, "integration.notify", "notify_queue", lambda: self.r.write(*mutations))


class WebhookState:
    """GitLab webhook deliveries seen (``Idempotency-Key``) and the pipeline runs they reported."""

    def __init__(self, runner: OpRunner | None, deliveries: Iterable[dict[str, Any]] = (),
                 pipelines: Iterable[dict[str, Any]] = ()) -> None:
        self.r = runner
        self.keys: dict[str, OrderedDict[str, None]] = {}
        for d in sorted(deliveries, key=lambda d: d["received_at"]):
            self.keys.setdefault(d["tenant_id"], OrderedDict())[d["delivery_key"]] = None
        # tenant -> ref or sha -> pipeline id -> the latest run
        self.runs: dict[str, dict[str, dict[str, PipelineRun]]] = {}
        for p in pipelines:
            self._remember(p["tenant_id"], PipelineRun(p["system"], p["pipeline_id"], p["ref"], p["state"],
                                                       p["vendor_status"], p["url"], p["sha"], p["name"]))

    def seen(self, tenant: str, key: str) -> bool:
        return key in self.keys.get(tenant, {})

    def _remember(self, tenant: str, run: PipelineRun) -> None:
        known = self.runs.setdefault(tenant, {})
        for k in {run.ref, run.sha} - {""}:
            known.setdefault(k, {})[run.id] = run

    async def record(self, tenant: str, system: str, key: str | None, kind: str, run: PipelineRun | None) -> None:
        """Remember a delivery (and the pipeline run it reported); durable on return."""
        now = self.r.now() if self.r is not None else datetime.now()
        muts: list[Mutation] = []
        if key:
            seen = self.keys.setdefault(tenant, OrderedDict())
            seen[key] = None
            muts.append(Insert("webhook_deliveries", {"tenant_id": tenant, "system": system, "delivery_key": key,
                                                      "kind": kind, "received_at": now}))
            while len(seen) > KEEP_DELIVERIES:
                old, _ = seen.popitem(last=False)
                muts.append(Delete("webhook_deliveries", {"tenant_id": tenant, "system": system, "delivery_key": old}))
        if run is not None:
            self._remember(tenant, run)
            where = {"tenant_id": tenant, "system": run.system, "pipeline_id": run.id}
            muts += [Delete("webhook_pipelines", where),  # an upsert: the latest status of that pipeline
                     Insert("webhook_pipelines", {**where, "ref": run.ref, "sha": run.sha, "state": run.state,
                                                  "vendor_status": run.vendor_status, "url": run.url,
                                                  "name": run.name, "updated_at": now})]
        if muts and self.r is not None:
            runner = self.r
            await runner.run(None, "integration.inbound", f"integration:{system}", lambda: runner.write(*muts))
