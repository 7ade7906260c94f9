"""The op runner: state, the write queue and group commit, audit append, and :meth:`OpRunner.run`.

Every operation is a plain synchronous function that validates first (access
checks are the pure functions of ``access.py``), then mutates in-memory state
and queues its writes; :meth:`OpRunner.run` awaits the group commit before the
caller is answered.  Denials (permission, quota, suspended tenant) are
themselves audited.  The feature services (``tenancy.py``, ``usage.py``,
``auditops.py``, the model and trace routes) each hold this one runner; the
:class:`~core.engine.engine.Engine` composes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from core.audit import AuditEvent, format_ts, load_or_create_signing_key, make_event
from core.engine import access
from core.engine.access import Caller
from core.engine.commit import GroupCommitter
from core.engine.events import EventBus
from core.engine.journal import Journal, replay
from core.engine.jsontext import EncodedEvent
from core.engine.quarantine import Quarantined
from core.engine.state import State
from core.errors import MusubiError, PermissionDenied, QuotaExceeded
from core.paths import HomePaths
from core.rbac import SYSTEM_LOG, SYSTEM_TENANT
from core.storage.base import Insert, Mutation, Storage

log = logging.getLogger("musubi.engine")
T = TypeVar("T")

ENGINE_ACTOR = "engine"
RECENT_EVENTS = 512


_EPOCH = datetime(1970, 1, 1)


def utcnow() -> datetime:
    """Naive UTC now (the storage convention).

    Built from the epoch rather than ``datetime.now(UTC).replace(tzinfo=None)``:
    ``replace`` alone costs twice as much, and every operation asks the time.
    """
    return _EPOCH + timedelta(microseconds=time.time_ns() // 1000)


class OpRunner:
    """State, storage, the write queue, audit append and the run of one operation."""

    def __init__(self, paths: HomePaths, storage: Storage) -> None:
        self.paths = paths
        self.storage = storage
        # Acknowledged writes that a crash kept out of DuckDB are in the journal: apply them first.
        self.journal = Journal(paths.journal)
        # A group the database refuses is quarantined here rather than stopping the start.
        self.replayed, applied, quarantined = replay(self.journal, storage, paths.home, utcnow())
        if self.replayed:
            log.warning("re-applied %d journaled write group(s) after an unclean stop", self.replayed)
        snap = storage.load(utcnow())
        self.state = State.from_snapshot(snap)
        self.bus = EventBus()
        self.committer = GroupCommitter(
            storage, self._reload, self.journal, next_no=applied + 1, home=paths.home,
            on_quarantine=self.announce_quarantined, quarantined=snap.quarantined - len(quarantined),
        )
        if quarantined:
            self.committer.quarantine_found(quarantined, reload=False)  # state was loaded after them
        self.signing_key = load_or_create_signing_key(paths.signing_key)
        self.started_at = utcnow()
        self.schema_version = int(getattr(storage, "schema_version", lambda: 0)())
        self._last_ts = datetime.min
        # The newest acknowledged events of each tenant, so `audit list` (the TUI's
        # live table, the CLI) is answered without waiting for DuckDB to catch up.
        self.recent: dict[str, deque[EncodedEvent]] = defaultdict(lambda: deque(maxlen=RECENT_EVENTS))
        self._wrote = False
        self._heads_before: dict[str, tuple[int, str] | None] = {}
        self.ops = 0
        self.refusal: asyncio.Future[None] | None = None  # see queue()
        self.snapshot_jobs = snap.jobs  # handed to the JobService the Engine composes (core/jobs)
        self.snapshot_integrations = snap.integrations  # integrations (issue 17 gaps): core/integrations/persist.py

    def _reload(self) -> None:
        log.warning("reloading engine state from storage after a failed commit or a quarantined group")
        self.recent.clear()
        old, self.state = self.state, State.from_snapshot(self.storage.load(utcnow()))
        # Ids handed out to writes that never reached storage are not handed out again.
        self.state.next_ledger_id = max(self.state.next_ledger_id, old.next_ledger_id)
        self.state.next_quota_id = max(self.state.next_quota_id, old.next_quota_id)

    async def announce_quarantined(self, groups: list[Quarantined]) -> None:
        """Audit each quarantined group in the tenants it touched and in the system tenant.

        Runs once state no longer holds the groups' effects, so the events chain on
        the heads storage knows (after the quarantined events, which stay in the file).
        """

        def op() -> None:
            for q in groups:
                if q.actions and all(a == "engine.quarantine" for a in q.actions):
                    continue  # announcing an announcement could loop; the log and file have it
                base = {"group": q.group, "file": q.file, "error": q.error[:500], "mutations": q.mutations}
                where = [t for t in q.tenants if t in self.state.tenants]
                if SYSTEM_TENANT not in where and SYSTEM_TENANT in self.state.tenants:
                    where.append(SYSTEM_TENANT)
                for t in where:
                    seqs = [[r["first_seq"], r["last_seq"]] for r in q.audit if r["tenant_id"] == t]
                    self.audit(t, ENGINE_ACTOR, "engine.quarantine", f"journal_group:{q.group}", details={**base, "events": seqs})

        try:
            await self.run(None, "engine.quarantine", "journal", op)
        except Exception:
            log.exception("could not audit quarantined group(s) %s", [q.group for q in groups])

    # -- time -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """Strictly increasing naive-UTC time, so events of one engine never share a ts."""
        t = utcnow()
        if t <= self._last_ts:
            t = self._last_ts + timedelta(microseconds=1)
        self._last_ts = t
        return t

    # -- writing --------------------------------------------------------------------------

    def write(self, *mutations: Mutation) -> None:
        self._wrote = True
        self.committer.add(*mutations)

    def audit(
        self,
        tenant: str,
        actor: Caller | str,
        action: str,
        resource: str,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> AuditEvent:
        """Append one event to ``tenant``'s chain (committed with the batch, then published)."""
        d = dict(details or {})
        if isinstance(actor, Caller):
            if actor.impersonator:
                d["impersonator"] = actor.impersonator
            if actor.session:  # acted through a remote session (docs/remote.md)
                d["session"] = actor.session
            actor_name = actor.user
        else:
            actor_name = actor
        seq, prev = self.state.head(tenant)
        if tenant not in self._heads_before:
            self._heads_before[tenant] = self.state.heads.get(tenant)
        ev = make_event(tenant, seq + 1, ts or self.now(), actor_name, action, resource, outcome, d, prev)
        self.state.heads[tenant] = (ev.seq, ev.hash)
        self.write(
            Insert(
                "audit_log",
                {
                    "tenant_id": ev.tenant_id,
                    "seq": ev.seq,
                    "ts": ev.ts,
                    "actor": ev.actor,
                    "action": ev.action,
                    "resource": ev.resource,
                    "outcome": ev.outcome,
                    "details": ev.details,
                    "prev_hash": ev.prev_hash,
                    "hash": ev.hash,
                },
            )
        )
        event = EncodedEvent(
            tenant_id=ev.tenant_id, seq=ev.seq, ts=format_ts(ev.ts), actor=ev.actor,
            action=ev.action, resource=ev.resource, outcome=ev.outcome, details=d,
            prev_hash=ev.prev_hash, hash=ev.hash,
        )
        payload = {"type": "audit", "tenant": tenant, "event": event}

        def acknowledged() -> None:
            self.recent[tenant].append(event)
            self.bus.publish(tenant, payload)

        self.committer.on_commit(acknowledged)
        return ev

    # -- the op runner --------------------------------------------------------------------

    async def run(self, ctx: Caller | None, action: str, resource: str, fn: Callable[[], T]) -> T:
        """Run one operation; answer after its writes commit; audit denials."""
        self.refusal = None
        try:
            result, commit = self.queue(ctx, action, resource, fn)
        except BaseException:
            if self.refusal is not None:  # the denial's (or the bug's) own audit event, durable before the answer
                await asyncio.shield(self.refusal)
            raise
        if commit is not None:
            # Shielded: the future is the whole batch's, shared by every operation in it.  Awaited bare, a
            # cancelled caller (a client gone, a run cancelled) cancelled it for all of them, told
            # CancelledError while their writes were still being made durable.  The cancelled caller alone
            # sees its cancel now; its write, accepted and in memory, commits or fails with the batch.
            await asyncio.shield(commit)
        return result

    def queue(self, ctx: Caller | None, action: str, resource: str,
              fn: Callable[[], T]) -> tuple[T, asyncio.Future[None] | None]:
        """Run one operation now and seal its writes into the group commit without waiting for it.

        Answers (its result, the commit's future, or None when it wrote nothing).  For a caller that
        may start slow outside work while the commit is in flight (a model request while its ``sent``
        row is being made durable, docs/runs.md) and awaits the future before acting on the outcome.
        A refused or failed operation raises as in :meth:`run`, with the future of its own audit
        event in ``self.refusal`` (``run`` awaits it before raising).
        """
        self.refusal = None
        self.ops += 1
        self._wrote = False
        self._heads_before = {}  # chain heads this op moved, as they were: the undo log of a failed op
        batch = self.committer.batch
        mark = (batch, len(batch.mutations), len(batch.after_commit))
        try:
            result = fn()
        except (PermissionDenied, QuotaExceeded) as exc:
            if ctx is not None:
                details = {"code": exc.code, "reason": exc.message}
                for k in ("permission", "quota", "route"):
                    if k in exc.extra:
                        details[k] = exc.extra[k]
                # A tenant that does not exist has no log: the system log records the probe.
                where = ctx.tenant if ctx.tenant in self.state.tenants else SYSTEM_LOG
                self.audit(where, ctx, action, resource, "denied", details)
            if self._wrote:
                self.refusal = self.committer.seal()
            raise
        except MusubiError:
            raise  # validation errors: ops validate before they write, nothing queued
        except Exception as exc:
            # A bug: drop whatever this op queued and rewind the audit heads, so
            # no half-done write reaches the database and the chains stay whole,
            # then record the failure itself.
            b, n_mut, n_hooks = mark
            if b is self.committer.batch:
                del b.mutations[n_mut:]
                del b.after_commit[n_hooks:]
            for t, head in self._heads_before.items():
                if head is None:
                    self.state.heads.pop(t, None)
                else:
                    self.state.heads[t] = head
            log.exception("operation %s failed", action)
            if ctx is not None and ctx.tenant in self.state.tenants:
                self.audit(ctx.tenant, ctx, action, resource, "error", {"error": f"{type(exc).__name__}: {exc}"[:500]})
                self.refusal = self.committer.seal()
            raise MusubiError(
                f"internal engine error in {action}: {type(exc).__name__}: {exc}. Nothing was changed; "
                "details are in the engine log.",
                code="internal",
            ) from exc
        return result, (self.committer.seal() if self._wrote else None)

    # -- access (the pure functions of access.py, over the current state) -------------------

    def make_ctx(
        self, real_user: str, as_user: str | None, tenant: str, cwd: str | None, project: str | None, *,
        outsiders: bool = False,
    ) -> Caller:
        """The caller's context (:func:`core.engine.access.caller`)."""
        return access.caller(self.state, real_user, as_user, tenant, cwd, project, outsiders=outsiders)

    def perms(self, ctx: Caller, project: str | None = None) -> frozenset[str]:
        """What ``ctx`` may do at scope ``project`` (:func:`core.engine.access.perms`)."""
        return access.perms(self.state, ctx, project)

    def require(self, ctx: Caller, perm: str, *, project: str | None = None, read: bool = False) -> None:
        """Raise unless ``ctx`` holds ``perm`` at scope ``project`` (:func:`core.engine.access.require`)."""
        access.require(self.state, ctx, perm, project=project, read=read)

    def require_system(self, ctx: Caller, perm: str = "tenant.manage") -> None:
        """Raise unless ``ctx`` holds ``perm`` in the system tenant (:func:`core.engine.access.require_system`)."""
        access.require_system(self.state, ctx, perm)

    def system_owner(self, ctx: Caller) -> bool:
        """:func:`core.engine.access.system_owner` over the current state."""
        return access.system_owner(self.state, ctx)

    # -- reads and files ------------------------------------------------------------------

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a storage query in a thread once storage holds every acknowledged write."""
        await self.committer.sync()
        return await asyncio.to_thread(fn, *args)

    def tenant_dir(self, tenant: str) -> Path:
        d = self.paths.tenant_dir(tenant)
        d.mkdir(parents=True, exist_ok=True)
        return d
