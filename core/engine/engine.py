"""The engine: all operations over one storage, composed from the op mixins."""

from __future__ import annotations

from core.engine.auditops import AuditOps


class Engine(AuditOps):
    """Tenancy, RBAC, quotas and audit over one storage; see the mixins for each area."""
