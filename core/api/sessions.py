"""Request models and answers of the remote-session routes (``/v1/sessions``, ``/v1/remote/events``).

Kept out of ``core/api/models.py`` so the feature stays in its own module; the
route table is ``core/engine/routes_sessions.py`` and docs/api.md documents each route.
"""

from typing import Any, TypedDict

from core import limits, names
from core.api.models import Number, Request, count, text
from core.errors import BadRequest

PURPOSES = ("ssh", "web")
REMOTE_EVENTS = ("login", "refused", "logout")
MAX_CLIENT = 300  # characters of the client description (address, key fingerprint)

DEFAULT_SESSION_TTL_S = 8 * 3600  # a working day; revoked at disconnect long before, as a rule


def check_purpose(value: object, field: str) -> str:
    """``ssh`` or ``web``."""
    if value not in PURPOSES:
        raise BadRequest(f"{field} must be one of {', '.join(PURPOSES)}.", field=field)
    return str(value)


def check_event(value: object, field: str) -> str:
    """``login``, ``refused`` or ``logout``."""
    if value not in REMOTE_EVENTS:
        raise BadRequest(f"{field} must be one of {', '.join(REMOTE_EVENTS)}.", field=field)
    return str(value)


def check_user(value: object, field: str) -> str:
    """A musubi user name (core/names.py)."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a user name.", field=field)
    return names.user_name(value)


_client = text(MAX_CLIENT)


def _tenant(v: object, _field: str) -> str:
    return names.tenant_name(v)


def _opt_tenant(v: object, field: str) -> str | None:
    return None if v in (None, "") else _tenant(v, field)


def _client_text(v: object, field: str) -> str:
    return _client(v, field) or ""


def _opt_user(v: object, field: str) -> str | None:
    return None if v in (None, "") else check_user(v, field)


class SessionMint(Request):
    """``POST /v1/sessions``: a token for ``user`` in ``tenant``, for an ``ssh`` or ``web`` session."""

    user: Any = None
    tenant: Any = None
    purpose: Any = None
    ttl_s: Number = DEFAULT_SESSION_TTL_S
    client: Any = ""
    CHECKS = {
        "user": check_user,
        "tenant": _tenant,
        "purpose": check_purpose,
        "ttl_s": count(limits.TTL_S, none_is=DEFAULT_SESSION_TTL_S),
        "client": _client_text,
    }


class SessionPath(Request):
    """``DELETE /v1/sessions/{id}``, with ``?reason=``."""

    id: str
    reason: Any = None
    CHECKS = {"reason": text(limits.MAX_REASON_LEN)}


class RemoteEvent(Request):
    """``POST /v1/remote/events``: a log-in, refusal or log-out seen by ``musubi serve``."""

    mode: Any = None
    event: Any = None
    user: Any = None
    tenant: Any = None
    client: Any = ""
    reason: Any = None
    CHECKS = {
        "mode": check_purpose,
        "event": check_event,
        "user": _opt_user,
        "tenant": _opt_tenant,
        "client": _client_text,
        "reason": text(limits.MAX_REASON_LEN),
    }


class SessionRow(TypedDict):
    id: str
    user: str
    tenant: str
    purpose: str
    client: str
    created_at: str
    expires_at: str
    used: bool


class SessionMinted(SessionRow):
    token: str


class SessionRevoked(SessionRow):
    revoked: bool


class RemoteEventAudited(TypedDict):
    tenant: str
    seq: int
