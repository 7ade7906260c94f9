"""Permissions and built-in roles.

The matrix here is published in ``docs/rbac.md``; a test keeps the two in step.
Custom roles are stored per tenant and may hold any of :data:`PERMISSIONS`.
"""

from __future__ import annotations

from collections.abc import Iterable

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
