"""The route table of the engine's own resources: engine, tenants, projects, roles, members,
quotas and usage, reservations, audit and the event stream.

One row per route (:class:`core.engine.routing.Route`); request fields, their
defaults and ranges are in the request models (``core/api/models.py``), the
work in the engine's operations.  The few routes that are more than one
operation call have a handler here (or in ``stream.py``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from core import __version__
from core.api import models as m
from core.api import responses as a
from core.audit import ts_text
from core.engine import access
from core.engine.http import Api, json_response, peer_user, stream_export
from core.engine.routing import Route
from core.engine.stream import events
from core.errors import PermissionDenied
from core.quotas import quota_resource


async def health(api: Api, request: web.Request, _req: m.Empty) -> web.Response:
    e = api.r
    answer: m.Health = {
        "ok": True,
        "version": __version__,
        "pid": os.getpid(),
        "home": str(e.paths.home),
        "socket": str(e.paths.socket),
        "database": str(e.paths.db),
        "schema_version": e.schema_version,
        "started_at": ts_text(e.started_at),
        "tenants": len(e.state.tenants),
        "subscribers": len(e.bus),
        "commits": e.committer.commits,
        "sync_helper_pid": e.committer.syncer.pid,
        "quarantined_groups": e.committer.quarantined,
        "quarantine_dir": str(e.paths.quarantine),
        "user": peer_user(request),
    }
    return json_response(answer)


async def whoami(api: Api, request: web.Request, _req: m.Empty) -> web.Response:
    c = await api.ctx(request, outsiders=True)
    st = api.r.state
    # Someone with no role in the tenant sees only that they have none, not its state.
    system = access.system_owner(st, c)
    visible = st.is_member(c.tenant, c.user) or system
    answer: m.Whoami = {
        "user": c.user,
        "real_user": c.real_user,
        "tenant": c.tenant,
        "tenant_status": st.tenants[c.tenant].status if visible else None,
        "project": c.project,
        "roles": st.roles_of(c.tenant, c.user, c.project),
        "permissions": sorted(access.perms(st, c, c.project)),
        # What counts for the tenant's own resources (members, quotas, audit, tenants):
        # project roles add to "permissions" only for their project.
        "tenant_permissions": sorted(access.perms(st, c)),
        # May create, suspend and resume tenants ('tenant.manage' in the system tenant, not --as someone else).
        "system_admin": system,
    }
    return json_response(answer)


async def engine_stop(api: Api, request: web.Request, _req: m.Empty) -> web.Response:
    c = await api.ctx(request, "default", outsiders=True)

    def op() -> None:
        if not access.is_engine_user(c):  # --as never lends the power to stop
            raise PermissionDenied("only the OS user who runs the engine may stop it.")
        api.r.audit("default", c, "engine.stop", "engine")

    await api.r.run(c, "engine.stop", "engine", op)
    asyncio.get_running_loop().call_later(0.05, api.stop.set)
    answer: m.Stopping = {"stopping": True, "pid": os.getpid()}
    return json_response(answer)


async def audit_export(api: Api, request: web.Request, req: m.AuditExport) -> web.StreamResponse:
    """The export's content, streamed; the client writes the file (docs/api.md#export-files)."""
    c = await api.ctx(request)
    out = await api.e.audit_ops.audit_export(c, req.format, req.filters, req.destination, dry_run=req.dry_run)
    if out is None:
        return json_response({"ok": True, "format": req.format, "dry_run": True})
    return await stream_export(request, out)


async def _events(api: Api, request: web.Request, _req: m.EventsQuery) -> web.StreamResponse:
    return await events(api, request)


def _quota(r: Any) -> str:
    return quota_resource(r.metric, r.period, r.user)


R = Route
ROUTES: tuple[Route, ...] = (
    # -- engine
    R("GET", "/v1/health", "", "open", response=m.Health, handler=health),
    R("GET", "/v1/whoami", "", "open", response=m.Whoami, handler=whoami),
    R("POST", "/v1/engine/stop", "engine.stop", "engine", response=m.Stopping, handler=engine_stop, body=False),
    # -- tenants
    R("GET", "/v1/tenants", "", "open", response=list[a.TenantRow], op="tenancy.tenant_list", outsiders=True, run=False),
    R("POST", "/v1/tenants", "tenant.create", "system", m.TenantCreate, a.Tenant, op="tenancy.tenant_create",
      resource=lambda r: f"tenant:{r.name}", status=201, outsiders=True),
    R("GET", "/v1/tenants/{name}", "tenant.show", "member", m.NamePath, a.TenantShown, op="tenancy.tenant_show",
      resource=lambda r: f"tenant:{r.name}", outsiders=True),
    R("POST", "/v1/tenants/{name}/suspend", "tenant.suspend", "system", m.TenantSuspend, a.Tenant,
      op="tenancy.tenant_suspend",
      resource=lambda r: f"tenant:{r.name}", outsiders=True),
    R("POST", "/v1/tenants/{name}/resume", "tenant.resume", "system", m.NamePath, a.Tenant, op="tenancy.tenant_resume",
      resource=lambda r: f"tenant:{r.name}", outsiders=True, body=False),
    # -- projects
    R("GET", "/v1/projects", "project.list", "member", response=list[a.ProjectRow], op="tenancy.project_list",
      resource="projects"),
    R("POST", "/v1/projects", "project.add", "projects.manage", m.ProjectAdd, a.Project, op="tenancy.project_add",
      resource=lambda r: f"project:{r.name or r.path}", status=201),
    R("DELETE", "/v1/projects/{name}", "project.remove", "projects.manage", m.NamePath, a.ProjectRemoved,
      op="tenancy.project_remove",
      resource=lambda r: f"project:{r.name}"),
    # -- roles
    R("GET", "/v1/roles", "role.list", "member", response=list[a.Role], op="tenancy.role_list", resource="roles"),
    R("POST", "/v1/roles", "role.create", "members.manage", m.RoleCreate, a.Role, op="tenancy.role_create",
      resource=lambda r: f"role:{r.name}", status=201),
    R("GET", "/v1/roles/{name}", "role.show", "member", m.NamePath, a.RoleShown, op="tenancy.role_show",
      resource=lambda r: f"role:{r.name}"),
    R("DELETE", "/v1/roles/{name}", "role.delete", "members.manage", m.NamePath, a.RoleDeleted, op="tenancy.role_delete",
      resource=lambda r: f"role:{r.name}"),
    # -- members
    R("GET", "/v1/members", "member.list", "member", response=list[a.MemberRow], op="tenancy.member_list", resource="members"),
    R("POST", "/v1/members", "member.add", "members.manage", m.MemberAdd, a.MemberAdded, op="tenancy.member_add",
      resource=lambda r: f"member:{r.user}", status=201),
    R("DELETE", "/v1/members/{user}", "member.remove", "members.manage", m.MemberRemove, a.MemberRemoved,
      op="tenancy.member_remove",
      resource=lambda r: f"member:{r.user}"),
    # -- quotas and usage
    R("GET", "/v1/quotas", "quota.status", "quotas.read", m.QuotaStatusQuery, m.QuotaStatus, op="usage.quota_status",
      resource="quotas"),
    R("PUT", "/v1/quotas", "quota.set", "quotas.manage", m.QuotaSet, m.QuotaRow, op="usage.quota_set", resource=_quota),
    R("DELETE", "/v1/quotas", "quota.remove", "quotas.manage", m.QuotaRemove, a.QuotaRemoved, op="usage.quota_remove",
      resource=_quota),
    R("POST", "/v1/usage", "usage.record", "usage.record", m.UsageRecord, m.UsageRecorded, op="usage.usage_record",
      resource=lambda r: f"model:{r.model}", status=201),
    R("GET", "/v1/usage/history", "usage.history", "quotas.read", m.UsageHistoryQuery, a.UsageHistory,
      op="usage.usage_history", run=False),
    R("GET", "/v1/reservations", "usage.reservations", "quotas.read", response=list[a.ReservationRow],
      op="usage.reservation_list", resource="reservations"),
    R("POST", "/v1/reservations", "usage.reserve", "usage.record", m.Reserve, m.Reserved, op="usage.usage_reserve",
      resource="reservation", status=201),
    # Settle and release: usage.record for one's own reservation, quotas.manage for another's.
    R("POST", "/v1/reservations/{rid}/settle", "usage.settle", "usage.record", m.Settle, a.Settled, op="usage.usage_settle",
      resource=lambda r: f"reservation:{r.rid}"),
    R("POST", "/v1/reservations/{rid}/release", "usage.release", "usage.record", m.Release, m.Released,
      op="usage.usage_release", resource=lambda r: f"reservation:{r.rid}", body=False),
    # -- audit
    R("GET", "/v1/audit", "audit.list", "audit.read", m.AuditList, list[m.AuditEvent], op="audit_ops.audit_list", run=False),
    R("POST", "/v1/audit/verify", "audit.verify", "audit.read", m.AuditVerify, a.Verified, op="audit_ops.audit_verify",
      run=False),
    R("POST", "/v1/audit/export", "audit.export", "audit.export", m.AuditExport, a.Streamed,
      handler=audit_export),
    R("POST", "/v1/audit/prune", "audit.prune", "tenant.manage", m.AuditPrune, a.Pruned, op="audit_ops.audit_prune", run=False),
    R("POST", "/v1/audit/checkpoint", "audit.checkpoint", "audit.export", m.AuditCheckpoint, a.Checkpoint,
      op="audit_ops.audit_checkpoint", run=False),
    # -- events
    R("GET", "/v1/events", "events.subscribe", "member", m.EventsQuery, a.Streamed, handler=_events),
)
