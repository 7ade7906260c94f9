"""Permissions and built-in roles.

The matrix here is published in ``docs/rbac.md``; a test keeps the two in step.
Custom roles are stored per tenant and may hold any of :data:`PERMISSIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.errors import BadRequest

PERMISSIONS: tuple[str, ...] = (
    "tenant.manage",
    "members.manage",
    "quotas.manage",
    "quotas.read",
    "usage.record",
    "billing.read",
    "audit.read",
    "audit.export",
    "projects.manage",
    "specs.read",
    "specs.write",
    "index.build",
    "search.query",
    "runs.start",
    "runs.approve",
    "runs.cancel",
    "integrations.manage",
    "impersonate",
    "embedder.tune",  # local embedder (issue 19)
)

_ALL = frozenset(PERMISSIONS)

BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "owner": _ALL,
    "admin": _ALL - {"tenant.manage", "impersonate"},
    "member": frozenset(
        {
            "quotas.read",
            "usage.record",
            "specs.read",
            "specs.write",
            "index.build",
            "search.query",
            "runs.start",
            "runs.cancel",
        }
    ),
    "viewer": frozenset({"quotas.read", "specs.read", "search.query"}),
    "guest": frozenset({"specs.read"}),
    "auditor": frozenset({"audit.read", "audit.export", "billing.read", "quotas.read", "specs.read"}),
}

ROLE_DESCRIPTIONS: dict[str, str] = {
    "owner": "everything, including tenant management and impersonation",
    "admin": "runs the tenant day to day: members, quotas, projects, integrations, audit",
    "member": "builds: specs, index, search, runs, records usage",
    "viewer": "reads specs, searches code, sees quota headroom",
    "guest": "reads specs only",
    "auditor": "reads and exports the audit log and billing, nothing else",
}

# The tenant whose ``tenant.manage`` holders may create, suspend and resume tenants.
SYSTEM_TENANT = "default"
# The audit chain of requests that name no existing tenant (probes for tenant names): kept
# apart from every tenant's log so the members and auditors of 'default' are not flooded with
# strangers' probes, and read by system owners only.  No tenant can have this name: tenant
# names start with a letter or digit.
SYSTEM_LOG = "_system"


def validate_permissions(perms: Iterable[str]) -> frozenset[str]:
    """Check every name is a known permission; say which are not and list the valid ones."""
    perms = list(perms)
    if not perms:
        raise BadRequest("a role needs at least one permission; pass --permission P (repeatable).")
    unknown = sorted(set(perms) - _ALL)
    if unknown:
        raise BadRequest(
            f"unknown permission(s): {', '.join(unknown)}. Valid permissions: {', '.join(PERMISSIONS)}.",
            field="permission",
        )
    return frozenset(perms)


# -- scopes -----------------------------------------------------------------------------------
#
# Every resource lives at one scope: the tenant as a whole (``None``) or one project of it.
# What a user may do to a resource is decided by the bindings that cover the resource's scope
# alone: the tenant-scope binding always, plus the binding on the resource's own project. The
# project a request happens to be made from never widens that, so a project binding grants
# nothing outside its project. These are pure functions over the bindings, so the engine, its
# tests and later API layers can share them.

Bindings = Mapping[tuple[str, str], Mapping[str, Any]]  # (user, project or "") -> {"role": ...}
RolePermissions = Callable[[str], "frozenset[str] | None"]


def scope_roles(bindings: Bindings, user: str, scope: str | None) -> list[str]:
    """Roles ``user`` holds for a resource at ``scope`` (None: tenant-wide; else a project name)."""
    roles = []
    b = bindings.get((user, ""))
    if b:
        roles.append(str(b["role"]))
    if scope:
        b = bindings.get((user, scope))
        if b:
            roles.append(str(b["role"]))
    return roles


def scope_permissions(bindings: Bindings, role_permissions: RolePermissions, user: str, scope: str | None) -> frozenset[str]:
    """The union of the permissions of :func:`scope_roles`."""
    perms: set[str] = set()
    for role in scope_roles(bindings, user, scope):
        perms |= role_permissions(role) or frozenset()
    return frozenset(perms)


def acting_permissions(
    bindings: Bindings, role_permissions: RolePermissions, real_user: str, user: str, scope: str | None
) -> frozenset[str]:
    """What a request made by ``real_user`` acting as ``user`` may do at ``scope``.

    An impersonated request holds only what both the impersonated user and the
    impersonator hold there: ``--as`` shows what someone else sees, it never
    lends their powers (so acting as a system owner does not make one).
    """
    perms = scope_permissions(bindings, role_permissions, user, scope)
    if real_user != user:
        perms &= scope_permissions(bindings, role_permissions, real_user, scope)
    return perms


def may_impersonate(bindings: Bindings, role_permissions: RolePermissions, real_user: str) -> bool:
    """Impersonation is a tenant-wide power: only a tenant-scope binding can carry it."""
    return "impersonate" in scope_permissions(bindings, role_permissions, real_user, None)


def visible_projects(bindings: Bindings, user: str) -> frozenset[str] | None:
    """Projects whose names and bindings ``user`` may see: None (all) with a tenant-scope binding."""
    if (user, "") in bindings:
        return None
    return frozenset(p for (u, p) in bindings if u == user and p)
