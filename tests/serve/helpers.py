"""Requests carrying a session token, and reading the audit log, for the remote-session tests."""

from __future__ import annotations

from typing import Any

from tests.engine.helpers import Home


def raw(h: Home, method: str, path: str, body: Any = None, *, token: str | None = None,
        tenant: str | None = None, as_user: str | None = None) -> tuple[int, Any]:
    """One request (with ``X-Musubi-Session`` when ``token``): (status, decoded JSON)."""
    return h.raw(method, path, body, tenant=tenant, as_user=as_user,
                 headers={"X-Musubi-Session": token} if token else None)


def mint(h: Home, user: str, tenant: str, purpose: str = "ssh", **extra: Any) -> dict[str, Any]:
    status, out = raw(h, "POST", "/v1/sessions", {"user": user, "tenant": tenant, "purpose": purpose, **extra})
    assert status == 201, out
    return dict(out)


def actions(h: Home, tenant: str, prefix: str) -> list[dict[str, Any]]:
    """Audit events of ``tenant`` whose action starts with ``prefix``, oldest first."""
    return [e for e in h.audit(tenant) if e["action"].startswith(prefix)]
