"""Who is asking, and what they may do: pure functions over the engine's in-memory state.

Nothing here writes or awaits: each function reads :class:`~core.engine.state.State`
(bindings, roles, tenants, projects) and answers or raises a typed refusal.  The
op runner (``runner.py``) and the feature services call them inside an operation,
so a refusal raised here is audited by :meth:`OpRunner.run <core.engine.runner.OpRunner.run>`.
The permission algebra itself (scopes, impersonation) is ``core/rbac.py``.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import KW_ONLY, dataclass
from functools import cache, partial
from typing import Any

from core import names
from core.engine.state import State, Tenant
from core.errors import NotFound, PermissionDenied, TenantSuspended
from core.paths import is_within
from core.rbac import SYSTEM_TENANT, may_impersonate, visible_projects

# Who may still read a suspended tenant ("admin reads"): its owners, admins and auditors.
ADMIN_READERS = frozenset({"tenant.manage", "members.manage", "audit.read"})


@dataclass
class Caller:
    """Who is asking, in which tenant and project.

    ``real_user`` comes from SO_PEERCRED on the socket; ``user`` differs only
    when an allowed ``--as`` impersonation is in effect.  ``session`` is the id of the
    engine-minted remote session (``core/identity/sessions.py``) the request came with:
    ``real_user`` is then the session's user, not the socket peer.
    """

    real_user: str
    user: str
    tenant: str
    project: str | None = None
    _: KW_ONLY  # the identity fields below are always named: a positional mix-up once lent engine powers
    # identity / SSO: the caller's live SSO session (core.identity.service.Session), bound to real_user
    sso: Any = None
    session: str | None = None  # a remote session's id (docs/remote.md): the engine acts as its user
    # identity / SSO: how that remote session's user was authenticated (ssh-key, web-token, saml:IDP, oidc:NAME)
    auth: str | None = None

    @property
    def impersonator(self) -> str | None:
        return self.real_user if self.real_user != self.user else None

    def describe(self) -> str:
        return f"{self.user} (as impersonated by {self.real_user})" if self.impersonator else self.user


# -- the engine's own OS user -------------------------------------------------------------


@cache
def engine_os_user() -> str:
    """The OS user this engine process runs as (who bootstraps 'default' and may stop it)."""
    return pwd.getpwuid(os.getuid()).pw_name


def is_engine_user(ctx: Caller) -> bool:
    """The socket peer is the engine's OS user, acting as themself.

    Judged on ``real_user`` (SO_PEERCRED), and only without ``--as``: impersonating the
    engine's user never lends its powers, and the engine's user acting as someone else
    gets only what that someone gets (docs/rbac.md#impersonation).  A remote session
    (docs/remote.md) never counts, even for a musubi user named like the engine's OS user.
    """
    return ctx.real_user == engine_os_user() and ctx.user == ctx.real_user and ctx.session is None


# -- roles and permissions ----------------------------------------------------------------


def is_system_admin(state: State, user: str) -> bool:
    """May see every tenant (holds 'tenant.manage' in the system tenant)."""
    return "tenant.manage" in state.permissions_of(SYSTEM_TENANT, user, None)


def system_owner(state: State, ctx: Caller) -> bool:
    """A system owner acting as themself, or an impersonation both sides of which are system owners."""
    return is_system_admin(state, ctx.user) and (ctx.real_user == ctx.user or is_system_admin(state, ctx.real_user))


def perms(state: State, ctx: Caller, project: str | None = None) -> frozenset[str]:
    """What ``ctx`` may do to a resource of scope ``project`` (None: the tenant as a whole)."""
    return state.acting_permissions(ctx.tenant, ctx.real_user, ctx.user, project)


def outsider(user: str, tenant: str) -> PermissionDenied:
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


def require(state: State, ctx: Caller, perm: str, *, project: str | None = None, read: bool = False) -> None:
    """Raise unless the caller holds ``perm`` for a resource of scope ``project``.

    ``project`` is the scope of the resource acted on, never just the project the
    request comes from: None (the default, and the safe one) asks for a
    tenant-scope grant, so a project binding counts only for its own project's
    resources.  A suspended tenant allows only admin reads.
    """
    held = perms(state, ctx, project)
    if perm not in held:
        roles = state.roles_of(ctx.tenant, ctx.user, project)
        has = f"role {', '.join(roles)}" if roles else "no role"
        # Project names are the tenant's business: never named to someone with no role in it.
        named = project and state.is_member(ctx.tenant, ctx.user)
        where = f"tenant {ctx.tenant!r}" + (f", project {project!r}" if named else "")
        bindings = state.members.get(ctx.tenant, {})
        elsewhere = bindings.get((ctx.user, ctx.project or "")) if ctx.project and ctx.project != project else None
        if elsewhere:
            has += f"; role {elsewhere['role']} on project {ctx.project!r} counts only for that project"
        if ctx.impersonator and perm in state.permissions_of(ctx.tenant, ctx.user, project):
            has += f"; acting as {ctx.user}, {ctx.real_user} may use only permissions both hold"
        raise PermissionDenied(
            f"permission denied: {ctx.user} lacks '{perm}' in {where} (has {has}). "
            f"Ask a tenant owner or admin for a role with '{perm}' (see: musubi role list).",
            permission=perm,
        )
    if state.tenants[ctx.tenant].status == "suspended" and not (read and held & ADMIN_READERS):
        raise TenantSuspended(
            f"tenant {ctx.tenant!r} is suspended: only admin reads and resume are allowed. "
            f"A system owner can resume it with: musubi tenant resume {ctx.tenant}",
            permission=perm,
        )


def suspended_read_check(state: State, ctx: Caller) -> None:
    """On a suspended tenant only owners, admins and auditors (tenant scope) may still read."""
    if state.tenants[ctx.tenant].status != "suspended":
        return
    if not perms(state, ctx) & ADMIN_READERS:
        raise TenantSuspended(
            f"tenant {ctx.tenant!r} is suspended: only its owners, admins and auditors may read it. "
            f"A system owner can resume it with: musubi tenant resume {ctx.tenant}",
            permission="tenant.manage",
        )


def require_member(state: State, ctx: Caller) -> None:
    """Any role in the tenant (or a system owner); a suspended tenant only for admin reads."""
    if not state.is_member(ctx.tenant, ctx.user) and not system_owner(state, ctx):
        raise PermissionDenied(
            f"permission denied: {ctx.user} has no role in tenant {ctx.tenant!r}; ask one of its owners or admins "
            f"to add you (musubi member add {ctx.user} --role viewer).",
            permission="any role in the tenant",
        )
    suspended_read_check(state, ctx)


def require_system(state: State, ctx: Caller, perm: str = "tenant.manage") -> None:
    """Cross-tenant actions need ``perm`` at tenant scope of the system tenant ('default')."""
    if perm not in state.acting_permissions(SYSTEM_TENANT, ctx.real_user, ctx.user, None):
        raise PermissionDenied(
            f"permission denied: {ctx.user} lacks '{perm}' in the system tenant {SYSTEM_TENANT!r} "
            "(a tenant-scope role there), which creating, suspending and resuming tenants needs. "
            "Ask an owner of 'default'.",
            permission=perm,
        )


def shown_projects(state: State, ctx: Caller, system: bool | None = None) -> dict[str, dict[str, Any]]:
    """The tenant's projects ``ctx`` may see: all with a tenant-scope role (or as a system
    owner), else only the projects it is bound in."""
    projects = state.projects.get(ctx.tenant, {})
    if system if system is not None else system_owner(state, ctx):
        return projects
    seen = visible_projects(state.members.get(ctx.tenant, {}), ctx.user)
    return projects if seen is None else {n: p for n, p in projects.items() if n in seen}


# -- tenants and projects -----------------------------------------------------------------


def tenant_or_404(state: State, name: str) -> Tenant:
    """The tenant ``name`` (its name checked first), or a 404 pointing at ``tenant list``."""
    names.tenant_name(name)
    t = state.tenants.get(name)
    if t is None:
        raise NotFound(
            f"unknown tenant {name!r}. See your tenants with: musubi tenant list",
            resource=f"tenant:{name}",
        )
    return t


def innermost_project(projects: dict[str, dict[str, Any]], path: str) -> str | None:
    """The project whose ``path`` is ``path`` or its nearest ancestor (compared as given)."""
    best, best_len = None, -1
    for name, p in projects.items():
        root = os.path.normpath(p["path"])
        if is_within(path, root) and len(root) > best_len:
            best, best_len = name, len(root)
    return best


def project_for(state: State, tenant: str, project: str | None, cwd: str | None) -> str | None:
    """The explicit project, else the registered project containing ``cwd``.

    ``cwd`` only chooses which project a request is made from (the client's own
    working directory, already resolved by ``getcwd``); it never names a file the
    engine reads, so it is compared as given.  Paths the engine does read go
    through :func:`project_of_path`, which resolves symlinks first.
    """
    projects = state.projects.get(tenant, {})
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


def project_of_path(state: State, tenant: str, path: str) -> tuple[str | None, str]:
    """(the project whose folder really holds ``path``, the resolved path).

    Symlinks are resolved on both sides before comparing, so a link inside a
    project pointing elsewhere is judged by where it leads.
    """
    real = os.path.realpath(path)
    roots = {n: {"path": os.path.realpath(p["path"])} for n, p in state.projects.get(tenant, {}).items()}
    return innermost_project(roots, real), real


def caller(
    state: State, real_user: str, as_user: str | None, tenant: str, cwd: str | None, project: str | None, *,
    outsiders: bool = False,
) -> Caller:
    """The caller's context; refuses callers with no role in the tenant unless ``outsiders``.

    ``outsiders`` is for the few routes that answer people outside the tenant
    (who am I, my tenants, system-level tenant management), which check for themselves.
    """
    names.tenant_name(tenant)
    exists = tenant in state.tenants
    if not exists and is_system_admin(state, real_user):
        tenant_or_404(state, tenant)  # system admins may know which tenants exist
    user = real_user
    if as_user and as_user != real_user:
        names.user_name(as_user)
        # Only a tenant-scope binding carries 'impersonate': a project owner acting as
        # someone else could otherwise act as anyone, up to a system owner.
        role_perms = partial(state.role_permissions, tenant)
        if not (exists and may_impersonate(state.members.get(tenant, {}), role_perms, real_user)):
            raise PermissionDenied(
                f"permission denied: {real_user} may not act as {as_user} in tenant {tenant!r}: "
                "impersonation needs the 'impersonate' permission in a tenant-scope role (owner); "
                "a project-scope role never allows it.",
                permission="impersonate",
                resource=f"user:{as_user}",
            )
        user = as_user
    inside = exists and state.is_member(tenant, user)
    if not inside and not system_owner(state, Caller(real_user, user, tenant)):
        if not outsiders:
            raise outsider(user, tenant)
        return Caller(real_user, user, tenant, None)
    proj = project_for(state, tenant, project, cwd)
    ctx = Caller(real_user, user, tenant, proj)
    if proj and not project and not inside:
        # Someone with no role here learns nothing of the tenant's projects from where they
        # stand (the project name would otherwise be echoed in whoami and denial messages).
        ctx.project = None
    return ctx
