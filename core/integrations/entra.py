"""Delegated Entra ID tokens for Teams (Microsoft Graph) and Azure DevOps, by msal's device-code flow.

``musubi integrations login teams|ado`` asks the engine to start msal's device flow
(``initiate_device_flow``) for the system's scopes; the CLI prints the code and the address, the
user signs in on any browser, and the engine, polling in a thread (``acquire_token_by_device_flow``),
keeps the msal token cache **serialized in the tenant's 0600 secrets file** (secret
``msal_cache``, never in DuckDB, the journal, the audit log or an answer).  Each connector built
afterwards gets a fresh access token from that cache with ``acquire_token_silent`` (a refresh
when it expired); a cache msal changed is written back.  App-only (client-credentials) tokens are
never asked for: Graph refuses channel messages from them.

Settings (``musubi integrations set teams|ado ...``): ``client_id`` (a public client app
registration), ``tenant_id`` (the Entra tenant; default ``organizations``) or ``authority``
(a full authority URL), ``ca_bundle`` (a private CA, e.g. a proxy), ``scopes`` (space-separated,
to override the defaults below).  ``auth=entra`` is set by a successful login.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from core.errors import BadRequest
from core.integrations.contracts import IntegrationError

# Delegated scopes: Graph's ChannelMessage.Send, and Azure DevOps' resource (its well-known app id).
SCOPES = {"teams": ("https://graph.microsoft.com/ChannelMessage.Send",),
          "ado": ("499b84ac-1321-427f-aa17-267ca6975798/.default",)}
SYSTEMS = tuple(SCOPES)
CACHE = "msal_cache"  # the secret holding the serialized msal token cache


@dataclass(frozen=True)
class EntraSettings:
    system: str
    client_id: str
    authority: str
    scopes: tuple[str, ...]
    ca_bundle: str | None

    @classmethod
    def of(cls, system: str, settings: dict[str, str]) -> EntraSettings:
        if system not in SCOPES:
            raise BadRequest(f"Entra sign-in is for {' and '.join(SYSTEMS)}; not {system!r}.", field="system")
        client_id = settings.get("client_id", "").strip()
        if not client_id:
            raise BadRequest(f"set the app registration first: musubi integrations set {system} client_id=APP_ID "
                             "tenant_id=TENANT_ID (a public client with the device flow allowed).", field="client_id")
        authority = settings.get("authority") or \
            f"https://login.microsoftonline.com/{settings.get('tenant_id') or 'organizations'}"
        if not authority.startswith("https://"):
            raise BadRequest(f"authority must be an https URL; got {authority!r}.", field="authority")
        scopes = tuple(settings.get("scopes", "").split()) or SCOPES[system]
        return cls(system, client_id, authority.rstrip("/"), scopes, settings.get("ca_bundle") or None)


def _app(es: EntraSettings, cache_text: str | None) -> tuple[Any, Any]:
    import msal

    from core.identity.flows import Provider, msal_app

    cache = msal.SerializableTokenCache()
    if cache_text:
        with contextlib.suppress(ValueError):  # a damaged cache is a cache miss: sign in again
            cache.deserialize(cache_text)
    p = Provider(es.system, "entra", es.client_id, None, es.authority, list(es.scopes), es.ca_bundle)
    return msal_app(p, cache=cache), cache


def _vendor_error(es: EntraSettings, result: dict[str, Any], what: str) -> IntegrationError:
    from core.identity.redact import redact

    err = str(result.get("error") or "unknown_error")[:80]
    desc = redact(str(result.get("error_description") or ""))[:300]
    return IntegrationError(f"{es.system}: {what}: Entra ID answered {err}" + (f" ({desc})" if desc else "") + ".",
                            kind="auth", system=es.system)


def start(es: EntraSettings, cache_text: str | None) -> tuple[Any, dict[str, Any]]:
    """Begin the device flow (blocking; run in a thread): the msal app (with its cache) and the flow."""
    app, cache = _app(es, cache_text)
    try:
        flow = app.initiate_device_flow(scopes=list(es.scopes))
    except ValueError as exc:
        raise IntegrationError(f"{es.system}: msal cannot use {es.authority}: {exc}"[:300], kind="config",
                               system=es.system) from None
    if "user_code" not in flow:
        raise _vendor_error(es, flow, "the device sign-in did not start")
    return (app, cache), flow


def finish(es: EntraSettings, handle: tuple[Any, Any], flow: dict[str, Any]) -> tuple[str, str]:
    """Wait for the user (blocking; in a thread): (the account's name, the serialized cache)."""
    app, cache = handle
    result = app.acquire_token_by_device_flow(flow)
    if not isinstance(result.get("access_token"), str):
        if result.get("error") in (None, "expired_token") and "error_description" not in result:
            raise IntegrationError(f"{es.system}: the sign-in code expired before it was entered; run musubi "
                                   f"integrations login {es.system} again.", kind="auth", system=es.system)
        raise _vendor_error(es, result, "the device sign-in failed")
    claims = result.get("id_token_claims") or {}
    who = str(claims.get("preferred_username") or claims.get("name") or claims.get("sub") or "signed in")
    return who, cache.serialize()


def token(es: EntraSettings, cache_text: str | None) -> tuple[str, str | None]:
    """A delegated access token from the cache, refreshed when needed (blocking; in a thread).

    Answers (token, the cache to store back, or None when msal left it unchanged); an
    :class:`IntegrationError` (``auth``) naming ``musubi integrations login`` when there is none.
    """
    app, cache = _app(es, cache_text)
    for account in app.get_accounts():
        result = app.acquire_token_silent(list(es.scopes), account=account)
        if result and isinstance(result.get("access_token"), str):
            now = cache.serialize()
            return result["access_token"], (now if now != cache_text else None)
        if result and result.get("error"):
            raise _vendor_error(es, result, f"the saved sign-in could not be refreshed; run musubi integrations "
                                f"login {es.system}")
    raise IntegrationError(f"{es.system}: not signed in to Entra ID; run: musubi integrations login {es.system}",
                           kind="auth", system=es.system)
