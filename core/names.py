"""Validation of the names users type: tenants, users, roles, projects."""

from __future__ import annotations

import re

from core.errors import BadRequest

TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ROLE_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
# OS user names (POSIX portable set, plus the common dot/at forms of directory users).
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _check(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{kind} name is missing; give a {kind} name ({rule}).", field=kind)
    if not pattern.fullmatch(value):
        raise BadRequest(
            f"invalid {kind} name {value!r}: use {rule}.",
            field=kind,
        )
    return value


def tenant_name(value: object) -> str:
    """Validate a tenant name: ``[a-z0-9][a-z0-9-]{0,62}``."""
    return _check(
        "tenant", value, TENANT_RE, "1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
    )


def role_name(value: object) -> str:
    """Validate a role name."""
    return _check("role", value, ROLE_RE, "1-63 characters of a-z, 0-9, '_' and '-', starting with a letter")


def user_name(value: object) -> str:
    """Validate a user name (OS login or directory name)."""
    return _check("user", value, USER_RE, "1-64 characters of letters, digits, '_', '.', '@' and '-'")


def project_name(value: object) -> str:
    """Validate a project name."""
    return _check("project", value, PROJECT_RE, "1-128 characters of letters, digits, '_', '.' and '-'")
