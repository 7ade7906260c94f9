"""The tenancy service: tenants, projects, roles and member bindings.

Operations are plain synchronous methods run by the op runner (``runner.py``);
access checks are the pure functions of ``access.py``.  A new tenant gets the
default quotas through the quota and usage service (``usage.py``).
"""

from __future__ import annotations

import os
from typing import Any

from core import names
from core.audit import ts_text
from core.engine import access
from core.engine.access import Caller
from core.engine.runner import ENGINE_ACTOR, OpRunner
from core.engine.state import Tenant
from core.engine.usage import UsageService
from core.errors import BadRequest, Conflict, NotFound, PermissionDenied
from core.identity.gate import gate as sso_gate
from core.paths import is_within, os_identity, readable_by, system_path_reason
from core.quotas import DEFAULT_QUOTAS
from core.rbac import (
    BUILTIN_ROLES,
    PERMISSIONS,
    ROLE_DESCRIPTIONS,
    SYSTEM_TENANT,
    validate_permissions,
    visible_projects,
)
from core.storage.base import Delete, Insert, Update


class TenancyService:
    """Operations on tenants, projects, roles and members (``engine.tenancy``)."""

    def __init__(self, runner: OpRunner, usage: UsageService) -> None:
        self.r = runner
        self.usage = usage

    # -- tenants --------------------------------------------------------------------------

    def _create_tenant(self, name: str, owner: str, actor: Caller | str) -> Tenant:
        now = self.r.now()
        t = Tenant(name, "active", now, owner)
        self.r.state.tenants[name] = t
        self.r.write(Insert("tenants", {"tenant_id": name, "status": "active", "created_at": now, "created_by": owner}))
        self.r.audit(name, actor, "tenant.create", f"tenant:{name}", details={"owner": owner})
        self._bind(name, owner, "", "owner", actor)
        for metric, period, limit in DEFAULT_QUOTAS:
            self.usage.put_quota(name, metric, period, limit, None, (), actor)
        self.r.tenant_dir(name)
        return t

    def bootstrap(self, owner: str) -> bool:
        """On an empty home, create tenant 'default' owned by the first user. True if it did."""
        if self.r.state.tenants:
            return False
        self._create_tenant(SYSTEM_TENANT, owner, ENGINE_ACTOR)
        return True

    def tenant_create(self, ctx: Caller, name: str) -> dict[str, Any]:
        names.tenant_name(name)
        self.r.require_system(ctx)
        sso_gate(self.r.state, ctx, SYSTEM_TENANT)  # a system act: the system tenant's "SSO required"
        if name in self.r.state.tenants:
            raise Conflict(f"tenant {name!r} already exists.", resource=f"tenant:{name}")
        t = self._create_tenant(name, ctx.user, ctx)
        if ctx.tenant != name:
            self.r.audit(ctx.tenant, ctx, "tenant.create", f"tenant:{name}", details={"owner": ctx.user})
        return t.as_json()

    def tenant_list(self, ctx: Caller) -> list[dict[str, Any]]:
        st = self.r.state
        system = self.r.system_owner(ctx)
        out = []
        for name in sorted(st.tenants):
            if system or st.is_member(name, ctx.user):
                d = st.tenants[name].as_json()
                d["members"] = len({u for (u, _p) in st.members.get(name, {})})
                d["projects"] = len(access.shown_projects(self.r.state, Caller(ctx.real_user, ctx.user, name), system))
                d["your_roles"] = sorted({b["role"] for (u, _p), b in st.members.get(name, {}).items() if u == ctx.user})
                out.append(d)
        return out

    def tenant_show(self, ctx: Caller, name: str) -> dict[str, Any]:
        names.tenant_name(name)
        st = self.r.state
        system = self.r.system_owner(ctx)
        if not (system or (name in st.tenants and st.is_member(name, ctx.user))):
            raise access.outsider(ctx.user, name)  # the same answer whether or not it exists
        t = access.tenant_or_404(self.r.state, name)
        # "SSO required" (core/identity/gate.py): a member reads the tenant by its policy, a system
        # owner also by the system tenant's (whose policy governs the system acts)
        if st.is_member(name, ctx.user):
            sso_gate(st, ctx, name)
        if system:
            sso_gate(st, ctx, SYSTEM_TENANT)
        if not system:
            access.suspended_read_check(self.r.state, Caller(ctx.real_user, ctx.user, name, None))
        d = t.as_json()
        d["members"] = len({u for (u, _p) in st.members.get(name, {})})
        d["projects"] = sorted(access.shown_projects(self.r.state, Caller(ctx.real_user, ctx.user, name), system))
        d["quotas"] = len(st.quotas.get(name, {}))
        d["audit_head_seq"] = st.head(name)[0]
        d["data_dir"] = str(self.r.paths.tenant_dir(name))
        return d

    def _set_status(self, ctx: Caller, name: str, status: str, reason: str | None) -> dict[str, Any]:
        names.tenant_name(name)
        self.r.require_system(ctx)  # before the lookup: others learn nothing of which tenants exist
        sso_gate(self.r.state, ctx, SYSTEM_TENANT)  # a system act: the system tenant's "SSO required"
        t = access.tenant_or_404(self.r.state, name)
        if name == SYSTEM_TENANT and status == "suspended":
            raise Conflict("the system tenant 'default' cannot be suspended: it holds the system owners.")
        if t.status == status:
            raise Conflict(f"tenant {name!r} is already {status}.", resource=f"tenant:{name}")
        now = self.r.now()
        t.status, t.status_changed_at, t.status_reason = status, now, reason
        self.r.write(
            Update("tenants", {"status": status, "status_changed_at": now, "status_reason": reason}, {"tenant_id": name})
        )
        action = "tenant.suspend" if status == "suspended" else "tenant.resume"
        self.r.audit(name, ctx, action, f"tenant:{name}", details={"reason": reason} if reason else {})
        if ctx.tenant != name:
            self.r.audit(ctx.tenant, ctx, action, f"tenant:{name}", details={"reason": reason} if reason else {})
        return t.as_json()

    def tenant_suspend(self, ctx: Caller, name: str, reason: str | None = None) -> dict[str, Any]:
        return self._set_status(ctx, name, "suspended", reason)

    def tenant_resume(self, ctx: Caller, name: str) -> dict[str, Any]:
        return self._set_status(ctx, name, "active", None)

    # -- projects -------------------------------------------------------------------------

    def project_add(self, ctx: Caller, path: object, name: str | None = None, shared: object = False) -> dict[str, Any]:
        """Register the folder ``path`` (stored resolved) as a project; see docs/rbac.md#projects-and-paths."""
        if not isinstance(path, str) or not path or not os.path.isabs(path):
            raise BadRequest(f"project path {path!r} must be an absolute path to a directory.", field="path")
        if not isinstance(shared, bool):
            raise BadRequest("shared must be true or false.", field="shared")
        given = os.path.normpath(path)
        real = os.path.realpath(given)
        if not os.path.isdir(real):
            raise BadRequest(f"project path {path!r} is not an existing directory.", field="path")
        name = name or os.path.basename(given) or "root"
        names.project_name(name)
        self.r.require(ctx, "projects.manage")
        self._check_project_path(ctx, given, real, shared)
        projects = self.r.state.projects[ctx.tenant]
        if name in projects:
            raise Conflict(f"project {name!r} already exists in tenant {ctx.tenant!r}; pass --name to choose another name.")
        for other in projects.values():
            if os.path.realpath(other["path"]) == real:
                raise Conflict(f"{real} is already registered as project {other['name']!r}.")
        now = self.r.now()
        projects[name] = {"name": name, "path": real}
        self.r.write(Insert("projects", {"tenant_id": ctx.tenant, "name": name, "path": real, "created_at": now, "created_by": ctx.user}))
        details: dict[str, Any] = {"path": real}
        if real != given:
            details["given_path"] = given
        if shared:
            details["shared"] = True
        self.r.audit(ctx.tenant, ctx, "project.add", f"project:{name}", details=details)
        return {"name": name, "path": real, "tenant": ctx.tenant}

    def _check_project_path(self, ctx: Caller, given: str, real: str, shared: bool) -> None:
        """Refuse folders the engine must not read on this caller's behalf (denials are audited)."""
        leads = f" (it leads to {real})" if real != given else ""
        ident = os_identity(ctx.real_user)
        if ident is None or not readable_by(real, *ident):
            raise PermissionDenied(
                f"permission denied: {ctx.real_user} (the OS user calling) cannot read {given}{leads} by its mode "
                "bits, so it cannot be registered as your project; register a folder you can read.",
                permission="read access to the folder",
            )
        why = system_path_reason(real)
        home = os.path.realpath(self.r.paths.home)
        if why is None and (is_within(real, home) or is_within(home, real)):
            why = f"it holds or lies in the engine's home {home}"
        if why:
            raise PermissionDenied(
                f"permission denied: {given}{leads} cannot be a project: {why}. Register a repository folder.",
                permission="read access to the folder",
            )
        if shared and not self.r.system_owner(ctx):
            raise PermissionDenied(
                "permission denied: only a system owner (tenant.manage in 'default') may register a folder "
                "another tenant already registered (--shared).",
                permission="tenant.manage",
            )
        for tenant, projects in self.r.state.projects.items():
            if tenant == ctx.tenant or shared:
                continue
            for p in projects.values():
                other = os.path.realpath(p["path"])
                if is_within(real, other) or is_within(other, real):
                    raise Conflict(
                        f"{given}{leads} is, contains or lies inside a folder another tenant registered; one tenant's "
                        "repository is not another's project. A system owner may allow it with: "
                        "musubi project add PATH --shared",
                        resource=f"project:{os.path.basename(given)}",
                    )

    def _visible_projects(self, ctx: Caller, system: bool | None = None) -> dict[str, dict[str, Any]]:
        """The tenant's projects ``ctx`` may see: all with a tenant-scope role (or as a system
        owner), else only the projects it is bound in."""
        projects = self.r.state.projects.get(ctx.tenant, {})
        if system if system is not None else self.r.system_owner(ctx):
            return projects
        seen = visible_projects(self.r.state.members.get(ctx.tenant, {}), ctx.user)
        return projects if seen is None else {n: p for n, p in projects.items() if n in seen}

    def project_list(self, ctx: Caller) -> list[dict[str, Any]]:
        access.require_member(self.r.state, ctx)
        return [dict(p, current=(p["name"] == ctx.project)) for _n, p in sorted(access.shown_projects(self.r.state, ctx).items())]

    def project_remove(self, ctx: Caller, name: str) -> dict[str, Any]:
        names.project_name(name)
        if name not in self.r.state.projects.get(ctx.tenant, {}):
            raise NotFound(f"unknown project {name!r} in tenant {ctx.tenant!r}. See: musubi project list")
        self.r.require(ctx, "projects.manage")
        p = self.r.state.projects[ctx.tenant].pop(name)
        self.r.write(Delete("projects", {"tenant_id": ctx.tenant, "name": name}))
        mem = self.r.state.members[ctx.tenant]
        dropped = [k for k in mem if k[1] == name]
        for k in dropped:
            del mem[k]
        if dropped:
            self.r.write(Delete("members", {"tenant_id": ctx.tenant, "project": name}))
        self.r.audit(ctx.tenant, ctx, "project.remove", f"project:{name}", details={"path": p["path"], "bindings_removed": len(dropped)})
        return {"name": name, "path": p["path"], "bindings_removed": len(dropped)}

    # -- roles ----------------------------------------------------------------------------

    def role_create(self, ctx: Caller, name: str, permissions: list[str], description: str = "") -> dict[str, Any]:
        names.role_name(name)
        perms = validate_permissions(permissions)
        self.r.require(ctx, "members.manage")
        if name in BUILTIN_ROLES or name in self.r.state.custom_roles.get(ctx.tenant, {}):
            raise Conflict(f"role {name!r} already exists in tenant {ctx.tenant!r}.")
        mine = self.r.perms(ctx)  # roles are the tenant's: only tenant-scope grants count
        extra = sorted(perms - mine)
        if extra:
            raise PermissionDenied(
                f"permission denied: a role you create may hold only permissions you have; you lack {', '.join(extra)}.",
                permission=extra[0],
            )
        now = self.r.now()
        self.r.state.custom_roles[ctx.tenant][name] = {"permissions": perms, "description": description}
        self.r.write(Insert("roles", {"tenant_id": ctx.tenant, "role": name, "permissions": sorted(perms), "description": description, "created_at": now, "created_by": ctx.user}))
        self.r.audit(ctx.tenant, ctx, "role.create", f"role:{name}", details={"permissions": sorted(perms)})
        return {"name": name, "builtin": False, "permissions": sorted(perms), "description": description}

    def role_delete(self, ctx: Caller, name: str) -> dict[str, Any]:
        names.role_name(name)
        if name in BUILTIN_ROLES:
            raise Conflict(f"role {name!r} is built in and cannot be deleted.")
        if name not in self.r.state.custom_roles.get(ctx.tenant, {}):
            raise NotFound(f"unknown role {name!r} in tenant {ctx.tenant!r}. See: musubi role list")
        self.r.require(ctx, "members.manage")
        users = sorted({u for (u, _p), b in self.r.state.members.get(ctx.tenant, {}).items() if b["role"] == name})
        if users:
            raise Conflict(f"role {name!r} is still bound to {', '.join(users)}; remove or change those bindings first.")
        del self.r.state.custom_roles[ctx.tenant][name]
        self.r.write(Delete("roles", {"tenant_id": ctx.tenant, "role": name}))
        self.r.audit(ctx.tenant, ctx, "role.delete", f"role:{name}")
        return {"name": name, "deleted": True}

    def role_list(self, ctx: Caller) -> list[dict[str, Any]]:
        access.require_member(self.r.state, ctx)
        out = [
            {"name": r, "builtin": True, "permissions": sorted(p), "description": ROLE_DESCRIPTIONS[r]}
            for r, p in BUILTIN_ROLES.items()
        ]
        for r, info in sorted(self.r.state.custom_roles.get(ctx.tenant, {}).items()):
            out.append({"name": r, "builtin": False, "permissions": sorted(info["permissions"]), "description": info["description"]})
        return out

    def role_show(self, ctx: Caller, name: str) -> dict[str, Any]:
        names.role_name(name)
        for r in self.role_list(ctx):
            if r["name"] == name:
                r["matrix"] = {p: p in r["permissions"] for p in PERMISSIONS}
                return r
        raise NotFound(f"unknown role {name!r} in tenant {ctx.tenant!r}. See: musubi role list")

    def _require_member(self, ctx: Caller) -> None:
        if not self.r.state.is_member(ctx.tenant, ctx.user) and not self.r.system_owner(ctx):
            raise PermissionDenied(
                f"permission denied: {ctx.user} has no role in tenant {ctx.tenant!r}; ask one of its owners or admins "
                f"to add you (musubi member add {ctx.user} --role viewer).",
                permission="any role in the tenant",
            )
        access.suspended_read_check(self.r.state, ctx)

    # -- members --------------------------------------------------------------------------

    def _bind(self, tenant: str, user: str, project: str, role: str, actor: Caller | str) -> str:
        mem = self.r.state.members[tenant]
        now = self.r.now()
        creator = actor.user if isinstance(actor, Caller) else actor
        existed = (user, project) in mem
        if existed:
            old = mem[(user, project)]["role"]
            mem[(user, project)]["role"] = role
            self.r.write(Update("members", {"role": role}, {"tenant_id": tenant, "user_name": user, "project": project}))
            action, details = "member.update", {"role": role, "previous_role": old}
        else:
            mem[(user, project)] = {"role": role, "created_at": now, "created_by": creator}
            self.r.write(Insert("members", {"tenant_id": tenant, "user_name": user, "project": project, "role": role, "created_at": now, "created_by": creator}))
            action, details = "member.add", {"role": role}
        if project:
            details["project"] = project
        self.r.audit(tenant, actor, action, f"member:{user}", details=details)
        return action

    def _owners(self, tenant: str) -> list[str]:
        return [u for (u, p), b in self.r.state.members.get(tenant, {}).items() if p == "" and b["role"] == "owner"]

    def member_add(self, ctx: Caller, user: str, role: str, project: str | None = None) -> dict[str, Any]:
        names.user_name(user)
        names.role_name(role)
        perms = self.r.state.role_permissions(ctx.tenant, role)
        if perms is None:
            raise NotFound(f"unknown role {role!r} in tenant {ctx.tenant!r}. Built-in roles: {', '.join(BUILTIN_ROLES)}; see: musubi role list")
        proj = ""
        if project:
            names.project_name(project)
            if project not in self.r.state.projects.get(ctx.tenant, {}):
                raise NotFound(f"unknown project {project!r} in tenant {ctx.tenant!r}. See: musubi project list")
            proj = project
        # The binding's own scope decides: a project role manages only that project's bindings.
        self.r.require(ctx, "members.manage", project=proj or None)
        mine = self.r.perms(ctx, proj or None)
        extra = sorted(perms - mine)
        if extra:
            raise PermissionDenied(
                f"permission denied: granting role {role!r} would give {user} permissions you lack ({', '.join(extra)}).",
                permission=extra[0],
            )
        cur = self.r.state.members.get(ctx.tenant, {}).get((user, proj))
        if cur and cur["role"] == role:
            raise Conflict(f"{user} already has role {role!r}" + (f" on project {proj!r}" if proj else "") + ".")
        if cur and cur["role"] == "owner" and not proj and self._owners(ctx.tenant) == [user]:
            raise Conflict(f"{user} is the last owner of tenant {ctx.tenant!r}; make someone else owner first.")
        if cur and cur["role"] == "owner" and "tenant.manage" not in mine:
            raise PermissionDenied(
                f"permission denied: changing the role of owner {user} needs 'tenant.manage' (an owner).",
                permission="tenant.manage",
            )
        action = self._bind(ctx.tenant, user, proj, role, ctx)
        return {"tenant": ctx.tenant, "user": user, "role": role, "project": proj or None, "action": action}

    def member_list(self, ctx: Caller) -> list[dict[str, Any]]:
        """Every binding for tenant-scope members; the bindings of their own projects for the others."""
        access.require_member(self.r.state, ctx)
        out = []
        mem = self.r.state.members.get(ctx.tenant, {})
        seen = None if self.r.system_owner(ctx) else visible_projects(mem, ctx.user)
        for (u, p), b in sorted(mem.items()):
            if seen is not None and p not in seen:
                continue
            out.append({"user": u, "project": p or None, "role": b["role"], "since": ts_text(b["created_at"]), "added_by": b["created_by"]})
        return out

    def member_remove(self, ctx: Caller, user: str, project: str | None = None) -> dict[str, Any]:
        names.user_name(user)
        proj = project or ""
        if proj:
            names.project_name(proj)
        mem = self.r.state.members.get(ctx.tenant, {})
        if (user, proj) not in mem:
            where = f"project {proj!r} of tenant {ctx.tenant!r}" if proj else f"tenant {ctx.tenant!r}"
            raise NotFound(f"{user} has no binding in {where}. See: musubi member list")
        self.r.require(ctx, "members.manage", project=proj or None)
        role = mem[(user, proj)]["role"]
        if role == "owner" and not proj and self._owners(ctx.tenant) == [user]:
            raise Conflict(f"{user} is the last owner of tenant {ctx.tenant!r}; make someone else owner first.")
        if role == "owner" and "tenant.manage" not in self.r.perms(ctx, proj or None):
            raise PermissionDenied("permission denied: only an owner may remove an owner.", permission="tenant.manage")
        del mem[(user, proj)]
        self.r.write(Delete("members", {"tenant_id": ctx.tenant, "user_name": user, "project": proj}))
        self.r.audit(ctx.tenant, ctx, "member.remove", f"member:{user}", details={"role": role, **({"project": proj} if proj else {})})
        return {"tenant": ctx.tenant, "user": user, "project": proj or None, "removed_role": role}
