"""Engine core: request context, permission checks, audit append, the op runner.

Every operation is a plain synchronous method that validates first, then
mutates in-memory state and queues its writes; :meth:`EngineBase.run` awaits
the group commit before the caller is answered.  Denials (permission, quota,
suspended tenant) are themselves audited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from core import names
from core.audit import AuditEvent, format_ts, load_or_create_signing_key, make_event
from core.engine.commit import GroupCommitter
from core.engine.events import EventBus
from core.engine.journal import Journal, replay
from core.engine.jsontext import EncodedEvent
from core.engine.quarantine import Quarantined
from core.engine.state import State
from core.errors import MusubiError, NotFound, PermissionDenied, QuotaExceeded, TenantSuspended
from core.jobs.service import JobService
from core.paths import HomePaths, is_within
from core.rbac import SYSTEM_LOG, SYSTEM_TENANT, may_impersonate
from core.storage.base import Insert, Mutation, Storage

log = logging.getLogger("musubi.engine")
T = TypeVar("T")

ENGINE_ACTOR = "engine"
RECENT_EVENTS = 512
# Who may still read a suspended tenant ("admin reads"): its owners, admins and auditors.
ADMIN_READERS = frozenset({"tenant.manage", "members.manage", "audit.read"})


_EPOCH = datetime(1970, 1, 1)


def innermost_project(projects: dict[str, dict[str, Any]], path: str) -> str | None:
    """The project whose ``path`` is ``path`` or its nearest ancestor (compared as given)."""
    best, best_len = None, -1
    for name, p in projects.items():
        root = os.path.normpath(p["path"])
        if is_within(path, root) and len(root) > best_len:
            best, best_len = name, len(root)
    return best


def utcnow() -> datetime:
    """Naive UTC now (the storage convention).

    Built from the epoch rather than ``datetime.now(UTC).replace(tzinfo=None)``:
    ``replace`` alone costs twice as much, and every operation asks the time.
    """
    return _EPOCH + timedelta(microseconds=time.time_ns() // 1000)


@dataclass
class Caller:
    """Who is asking, in which tenant and project.

    ``real_user`` comes from SO_PEERCRED on the socket; ``user`` differs only
    when an allowed ``--as`` impersonation is in effect.
    """

    real_user: str
    user: str
    tenant: str
    project: str | None = None

    @property
    def impersonator(self) -> str | None:
        return self.real_user if self.real_user != self.user else None

    def describe(self) -> str:
        return f"{self.user} (as impersonated by {self.real_user})" if self.impersonator else self.user


class EngineBase:
    """State, storage, commit and the cross-cutting checks every operation uses."""

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
        self.jobs = JobService(self, snap.jobs)  # background jobs (core/jobs); started by the daemon
        self.code_index: Any = None  # core.rag.service.IndexService, set by core/engine/routes_index.py

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
                await self.committer.seal()
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
                await self.committer.seal()
            raise MusubiError(
                f"internal engine error in {action}: {type(exc).__name__}: {exc}. Nothing was changed; "
                "details are in the engine log.",
                code="internal",
            ) from exc
        if self._wrote:
            await self.committer.seal()
        return result

    # -- context and checks ---------------------------------------------------------------

    def tenant_or_404(self, name: str) -> Any:
        names.tenant_name(name)
        t = self.state.tenants.get(name)
        if t is None:
            raise NotFound(
                f"unknown tenant {name!r}. See your tenants with: musubi tenant list",
                resource=f"tenant:{name}",
            )
        return t

    def project_for(self, tenant: str, project: str | None, cwd: str | None) -> str | None:
        """The explicit project, else the registered project containing ``cwd``.

        ``cwd`` only chooses which project a request is made from (the client's own
        working directory, already resolved by ``getcwd``); it never names a file the
        engine reads, so it is compared as given.  Paths the engine does read go
        through :meth:`project_of_path`, which resolves symlinks first.
        """
        projects = self.state.projects.get(tenant, {})
        if project:
            names.project_name(project)
            if project not in projects:
                raise NotFound(
                    f"unknown project {project!r} in tenant {tenant!r}. See projects with: musubi project list",
                    resource=f"project:{project}",
                )
            return project
        if cwd:
            return innermost_project(projects, os.path.normpath(cwd))
        return None

    def project_of_path(self, tenant: str, path: str) -> tuple[str | None, str]:
        """(the project whose folder really holds ``path``, the resolved path).

        Symlinks are resolved on both sides before comparing, so a link inside a
        project pointing elsewhere is judged by where it leads.
        """
        real = os.path.realpath(path)
        roots = {n: {"path": os.path.realpath(p["path"])} for n, p in self.state.projects.get(tenant, {}).items()}
        return innermost_project(roots, real), real

    def is_system_admin(self, user: str) -> bool:
        """May see every tenant (holds 'tenant.manage' in the system tenant)."""
        return "tenant.manage" in self.state.permissions_of(SYSTEM_TENANT, user, None)

    def system_owner(self, ctx: Caller) -> bool:
        """A system owner acting as themself, or an impersonation both sides of which are system owners."""
        return self.is_system_admin(ctx.user) and (ctx.real_user == ctx.user or self.is_system_admin(ctx.real_user))

    def outsider(self, user: str, tenant: str) -> PermissionDenied:
        """The one refusal for a tenant the caller has no role in, whether or not it exists.

        The same text either way, so nobody learns which tenant names exist (nor,
        since it comes before any lookup, which project, role, member or
        reservation names a tenant has) by probing.
        """
        return PermissionDenied(
            f"permission denied: {user} has no role in tenant {tenant!r}, or there is no such tenant. "
            f"See your tenants with: musubi tenant list; an owner of the tenant can add you with: "
            f"musubi member add {user} --role ROLE",
            permission="any role in the tenant",
            resource=f"tenant:{tenant}",
        )

    def make_ctx(
        self, real_user: str, as_user: str | None, tenant: str, cwd: str | None, project: str | None, *,
        outsiders: bool = False,
    ) -> Caller:
        """The caller's context; refuses callers with no role in the tenant unless ``outsiders``.

        ``outsiders`` is for the few routes that answer people outside the tenant
        (who am I, my tenants, system-level tenant management), which check for themselves.
        """
        names.tenant_name(tenant)
        st = self.state
        exists = tenant in st.tenants
        if not exists and self.is_system_admin(real_user):
            self.tenant_or_404(tenant)  # system admins may know which tenants exist
        user = real_user
        if as_user and as_user != real_user:
            names.user_name(as_user)
            # Only a tenant-scope binding carries 'impersonate': a project owner acting as
            # someone else could otherwise act as anyone, up to a system owner.
            role_perms = partial(st.role_permissions, tenant)
            if not (exists and may_impersonate(st.members.get(tenant, {}), role_perms, real_user)):
                raise PermissionDenied(
                    f"permission denied: {real_user} may not act as {as_user} in tenant {tenant!r}: "
                    "impersonation needs the 'impersonate' permission in a tenant-scope role (owner); "
                    "a project-scope role never allows it.",
                    permission="impersonate",
                    resource=f"user:{as_user}",
                )
            user = as_user
        inside = exists and st.is_member(tenant, user)
        if not inside and not self.system_owner(Caller(real_user, user, tenant)):
            if not outsiders:
                raise self.outsider(user, tenant)
            return Caller(real_user, user, tenant, None)
        proj = self.project_for(tenant, project, cwd)
        ctx = Caller(real_user, user, tenant, proj)
        if proj and not project and not inside:
            # Someone with no role here learns nothing of the tenant's projects from where they
            # stand (the project name would otherwise be echoed in whoami and denial messages).
            ctx.project = None
        return ctx

    def perms(self, ctx: Caller, project: str | None = None) -> frozenset[str]:
        """What ``ctx`` may do to a resource of scope ``project`` (None: the tenant as a whole)."""
        return self.state.acting_permissions(ctx.tenant, ctx.real_user, ctx.user, project)

    def require(self, ctx: Caller, perm: str, *, project: str | None = None, read: bool = False) -> None:
        """Raise unless the caller holds ``perm`` for a resource of scope ``project``.

        ``project`` is the scope of the resource acted on, never just the project the
        request comes from: None (the default, and the safe one) asks for a
        tenant-scope grant, so a project binding counts only for its own project's
        resources.  A suspended tenant allows only admin reads.
        """
        st = self.state
        perms = self.perms(ctx, project)
        if perm not in perms:
            roles = st.roles_of(ctx.tenant, ctx.user, project)
            has = f"role {', '.join(roles)}" if roles else "no role"
            # Project names are the tenant's business: never named to someone with no role in it.
            named = project and st.is_member(ctx.tenant, ctx.user)
            where = f"tenant {ctx.tenant!r}" + (f", project {project!r}" if named else "")
            elsewhere = st.members.get(ctx.tenant, {}).get((ctx.user, ctx.project or "")) if ctx.project and ctx.project != project else None
            if elsewhere:
                has += f"; role {elsewhere['role']} on project {ctx.project!r} counts only for that project"
            if ctx.impersonator and perm in st.permissions_of(ctx.tenant, ctx.user, project):
                has += f"; acting as {ctx.user}, {ctx.real_user} may use only permissions both hold"
            raise PermissionDenied(
                f"permission denied: {ctx.user} lacks '{perm}' in {where} (has {has}). "
                f"Ask a tenant owner or admin for a role with '{perm}' (see: musubi role list).",
                permission=perm,
            )
        if st.tenants[ctx.tenant].status == "suspended" and not (read and perms & ADMIN_READERS):
            raise TenantSuspended(
                f"tenant {ctx.tenant!r} is suspended: only admin reads and resume are allowed. "
                f"A system owner can resume it with: musubi tenant resume {ctx.tenant}",
                permission=perm,
            )

    def suspended_read_check(self, ctx: Caller) -> None:
        """On a suspended tenant only owners, admins and auditors (tenant scope) may still read."""
        if self.state.tenants[ctx.tenant].status != "suspended":
            return
        if not self.perms(ctx) & ADMIN_READERS:
            raise TenantSuspended(
                f"tenant {ctx.tenant!r} is suspended: only its owners, admins and auditors may read it. "
                f"A system owner can resume it with: musubi tenant resume {ctx.tenant}",
                permission="tenant.manage",
            )

    def require_system(self, ctx: Caller, perm: str = "tenant.manage") -> None:
        """Cross-tenant actions need ``perm`` at tenant scope of the system tenant ('default')."""
        held = self.state.acting_permissions(SYSTEM_TENANT, ctx.real_user, ctx.user, None)
        if perm not in held:
            raise PermissionDenied(
                f"permission denied: {ctx.user} lacks '{perm}' in the system tenant {SYSTEM_TENANT!r} "
                "(a tenant-scope role there), which creating, suspending and resuming tenants needs. "
                "Ask an owner of 'default'.",
                permission=perm,
            )

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a storage query in a thread once storage holds every acknowledged write."""
        await self.committer.sync()
        return await asyncio.to_thread(fn, *args)

    def tenant_dir(self, tenant: str) -> Path:
        d = self.paths.tenant_dir(tenant)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def fmt(self, ts: datetime | None) -> str | None:
        return format_ts(ts) if ts else None
