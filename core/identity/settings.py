"""The ``[sso]`` section of config.toml: identity providers and sign-in rules (docs/identity.md).

Only public settings live here: issuer, client id, scopes, an optional CA bundle.  Musubi is a
public client (device flow, PKCE), so there is no client secret to keep; tokens stay in the
user's own 0600 files (``store.py``), never in DuckDB or the config.

Checked by pydantic through :class:`core.config.Config` (unknown keys are errors); the plain
checks below raise ValueError, which the config loader reports with the file, key and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

DEFAULT_SCOPES = ["openid", "profile", "email", "offline_access"]
# Signature algorithms an ID token may use at all; the provider's discovery narrows it further.
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def _https(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{what} must be an https:// URL (got {url!r})")


@dataclass
class ProviderSettings:
    """One identity provider (``[sso.providers.NAME]``)."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    kind: Literal["oidc", "entra"] = "oidc"
    """``entra`` signs in through msal; ``oidc`` through discovery + device flow (Okta, Keycloak, Auth0, Google)."""
    client_id: str = ""
    """The application (client) id registered at the provider; the ``aud`` of its ID tokens."""
    issuer: str = ""
    """The exact ``iss`` of ID tokens; discovery is ``{issuer}/.well-known/openid-configuration`` (oidc)."""
    authority: str = ""
    """Entra only: ``https://login.microsoftonline.com/<tenant id>``; discovery is ``{authority}/v2.0/...``."""
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))
    """Scopes asked for at sign-in (``openid`` is always added)."""
    algorithms: list[str] = field(default_factory=lambda: list(ASYMMETRIC_ALGS))
    """Signature algorithms accepted (also limited to what the provider's discovery lists)."""
    ca_bundle: str | None = None
    """A PEM file of CA certificates to trust for this provider (a private CA); default: the system's."""
    groups_claim: str = "groups"
    """The claim holding group ids or names."""
    roles_claim: str = "roles"
    """The claim holding app roles."""
    graph_url: str = "https://graph.microsoft.com"
    """Entra only: where group overage is resolved (``/v1.0/users/{oid}/getMemberObjects``)."""

    def __post_init__(self) -> None:
        if not self.client_id.strip():
            raise ValueError("client_id is required: the application id registered at the provider")
        if self.kind == "entra":
            _https(self.authority, "authority")
            if len([p for p in urlsplit(self.authority).path.split("/") if p]) != 1:
                raise ValueError("authority must name one directory tenant, "
                                 "e.g. https://login.microsoftonline.com/<tenant id>")
            if self.authority.rstrip("/").rsplit("/", 1)[-1] in ("common", "organizations", "consumers"):
                raise ValueError("authority must be a tenant id, not common/organizations/consumers "
                                 "(tokens from any tenant could otherwise sign in)")
            if self.issuer:
                _https(self.issuer, "issuer")
            _https(self.graph_url, "graph_url")
        else:
            _https(self.issuer, "issuer")
        bad = [a for a in self.algorithms if a not in ASYMMETRIC_ALGS]
        if bad or not self.algorithms:
            raise ValueError(f"algorithms must be some of {', '.join(ASYMMETRIC_ALGS)} (got {bad or 'none'}); "
                             "'none' and HMAC algorithms are never accepted")
        if "openid" not in self.scopes:
            self.scopes = ["openid", *self.scopes]

    def discovery_url(self) -> str:
        """Where the provider's OpenID configuration is read."""
        if self.kind == "entra":
            return self.authority.rstrip("/") + "/v2.0/.well-known/openid-configuration"
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass
class SsoSettings:
    """Sign-in settings (``[sso]``)."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    default: str | None = None
    """The provider ``musubi login`` uses without ``--provider`` (the only one when there is one)."""
    session_minutes: int = 480
    """How long an engine session lasts after sign-in; then ``musubi login`` again."""
    skew_s: int = 120
    """Clock skew allowed on ``exp``/``nbf``/``iat``."""
    max_token_age_s: int = 600
    """An ID token handed to the engine must have been issued this recently (``iat``)."""
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    """``[sso.providers.NAME]`` tables."""

    def __post_init__(self) -> None:
        if not 5 <= self.session_minutes <= 7 * 24 * 60:
            raise ValueError("session_minutes must be 5 to 10080 (a week)")
        if not 0 <= self.skew_s <= 300:
            raise ValueError("skew_s must be 0 to 300 seconds")
        if not 60 <= self.max_token_age_s <= 86_400:
            raise ValueError("max_token_age_s must be 60 to 86400 seconds")
        if self.default is not None and self.default not in self.providers:
            raise ValueError(f"default names no provider; define [sso.providers.{self.default}] or fix the name")
