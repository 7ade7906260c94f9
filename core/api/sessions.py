"""Request models and answers of the remote-session routes (``/v1/sessions``, ``/v1/remote/events``).

Kept out of ``core/api/models.py`` so the feature stays in its own module; the
route table is ``core/engine/routes_sessions.py`` and docs/api.md documents each route.
"""

import re
from typing import Any, TypedDict

from core import limits, names
from core.api.models import Number, Request, count, text
from core.errors import BadRequest

PURPOSES = ("ssh", "web")
REMOTE_EVENTS = ("login", "refused", "logout")
MAX_CLIENT = 300  # characters of the client description (address, key fingerprint)

AUTH_BY_CONFIG = ("ssh-key", "web-token")  # identity by configuration: not an SSO sign-in
AUTH_BY_SSO = ("saml:", "oidc:")  # a sign-in at an identity provider: counts as SSO
AUTH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")  # as core.identity.service.PROVIDER_NAME
MAX_VALUES = 1000  # groups or roles of one sign-in
MAX_VALUE = 256

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


def check_auth(value: object, field: str) -> str | None:
    """How the session's user was authenticated: ``ssh-key``, ``web-token``, ``saml:IDP``, ``oidc:PROVIDER``."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and (value in AUTH_BY_CONFIG or (
            value.startswith(AUTH_BY_SSO) and AUTH_NAME.fullmatch(value.split(":", 1)[1]))):
        return value
    raise BadRequest(f"{field} must be one of {', '.join(AUTH_BY_CONFIG)}, saml:IDP or oidc:PROVIDER "
                     "(IDP/PROVIDER: letters, digits, - and _).", field=field)


def _values(v: object, field: str) -> list[str]:
    """Group or role values a SAML/OIDC sign-in carried (bounded; each as the IdP sent it)."""
    if v in (None, ""):
        return []
    if not isinstance(v, list) or len(v) > MAX_VALUES or not all(
            isinstance(x, str) and 0 < len(x) <= MAX_VALUE and x.isprintable() for x in v):
        raise BadRequest(f"{field} must be a list of at most {MAX_VALUES} values of 1 to {MAX_VALUE} printable "
                         "characters.", field=field)
    return sorted(set(v))


class SessionMint(Request):
    """``POST /v1/sessions``: a token for ``user`` in ``tenant``, for an ``ssh`` or ``web`` session.

    ``auth`` says how ``musubi serve`` authenticated the user (default: ``ssh-key`` for ``ssh``,
    ``web-token`` for ``web``); ``groups``/``roles`` (SAML/OIDC sign-ins only) go through the
    tenant's SSO mapping rules before the token is minted (docs/identity.md#remote-sessions).
    """

    user: Any = None
    tenant: Any = None
    purpose: Any = None
    ttl_s: Number = DEFAULT_SESSION_TTL_S
    client: Any = ""
    auth: Any = None
    groups: Any = None
    roles: Any = None
    subject: Any = ""
    CHECKS = {
        "user": check_user,
        "tenant": _tenant,
        "purpose": check_purpose,
        "ttl_s": count(limits.TTL_S, none_is=DEFAULT_SESSION_TTL_S),
        "client": _client_text,
        "auth": check_auth,
        "groups": _values,
        "roles": _values,
        "subject": _client_text,  # the SAML NameID / OIDC sub, for the sso.map audit
    }

    def check(self) -> None:
        if self.auth is None:
            self.auth = "ssh-key" if self.purpose == "ssh" else "web-token"
        if self.purpose == "ssh" and self.auth != "ssh-key":
            raise BadRequest("an ssh session is authenticated by its key: auth must be ssh-key.", field="auth")
        if self.purpose == "web" and self.auth == "ssh-key":
            raise BadRequest("a web session is authenticated by web-token, saml:IDP or oidc:PROVIDER.", field="auth")
        if (self.groups or self.roles) and not str(self.auth).startswith(AUTH_BY_SSO):
            raise BadRequest("groups and roles come only with a saml: or oidc: sign-in (they feed the SSO mapping "
                             "rules).", field="groups")


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
    auth: str


class SessionMinted(SessionRow):
    token: str


class SessionRevoked(SessionRow):
    revoked: bool


class RemoteEventAudited(TypedDict):
    tenant: str
    seq: int
