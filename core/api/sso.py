"""Request models and answers of the SSO routes (``/v1/sso/...``; docs/api.md#sso, docs/identity.md).

Kept apart from ``models.py`` (the identity feature's own module); light like it: msgspec only.
"""

from __future__ import annotations

from typing import Any, TypedDict

from core.api.models import Request, flag, text

MAX_TOKEN = 64_000  # an ID token or access token (Entra tokens with many claims run to a few KB)


class SsoSignIn(Request):
    """``POST /v1/sso/session``: the ID token the provider issued, for the engine to validate itself."""

    provider: str = ""
    id_token: str = ""
    nonce: Any = None  # the nonce the flow sent (PKCE); None for the device flow
    access_token: Any = None  # Entra only: lets the engine resolve group overage at Graph
    CHECKS = {"provider": text(64, required=True), "id_token": text(MAX_TOKEN, required=True),
              "nonce": text(256), "access_token": text(MAX_TOKEN)}


class SsoRuleSet(Request):
    """``PUT /v1/sso/rules``: map a claim value to a tenant role."""

    value: str = ""
    role: str = ""
    claim: str = "groups"
    provider: str = ""
    CHECKS = {"value": text(256, required=True), "role": text(128, required=True)}


class SsoRuleRemove(Request):
    """``DELETE /v1/sso/rules?value=&claim=&provider=``."""

    value: str = ""
    claim: str = "groups"
    provider: str = ""
    CHECKS = {"value": text(256, required=True)}


class SsoPolicySet(Request):
    """``PUT /v1/sso/policy``."""

    required: Any = None
    break_glass: Any = None
    CHECKS = {"required": flag, "break_glass": text(128)}


class SsoProvider(TypedDict):
    name: str
    kind: str
    client_id: str
    issuer: str | None
    authority: str | None
    scopes: list[str]
    ca_bundle: str | None
    default: bool


class SsoSessionShown(TypedDict, total=False):
    signed_in: bool
    os_user: str
    provider: str
    subject: str
    name: str | None
    email: str | None
    signed_in_at: str
    expires_at: str
    groups: int
    app_roles: list[str]


class SsoTenantChange(TypedDict):
    tenant: str
    action: str
    role: str | None
    previous_role: str | None
    matched: list[str]


class SsoSignedIn(TypedDict):
    session: str
    provider: str
    subject: str
    name: str | None
    email: str | None
    os_user: str
    signed_in_at: str
    expires_at: str
    groups: int
    app_roles: list[str]
    tenants: list[SsoTenantChange]


class SsoSignedOut(TypedDict):
    signed_out: bool
    provider: str
    subject: str


class SsoRule(TypedDict, total=False):
    tenant: str
    provider: str | None
    claim: str
    value: str
    role: str
    created_at: str
    created_by: str
    action: str


class SsoPolicy(TypedDict):
    tenant: str
    sso_required: bool
    break_glass: str | None
    updated_at: str | None
    updated_by: str | None


# -- identity x remote sessions: OIDC sign-in of `musubi serve web --oidc` ---------------------


class SsoVerify(Request):
    """``POST /v1/sso/verify``: an ID token ``musubi serve web --oidc`` got, validated like a sign-in (engine user)."""

    provider: str = ""
    id_token: str = ""
    nonce: str = ""  # the authorization request's nonce: required here
    CHECKS = {"provider": text(64, required=True), "id_token": text(MAX_TOKEN, required=True),
              "nonce": text(256, required=True)}


class SsoVerified(TypedDict):
    provider: str
    subject: str
    email: str | None
    name: str | None
    groups: list[str]
    roles: list[str]
