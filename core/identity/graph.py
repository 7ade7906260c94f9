"""Entra group overage: when a user is in too many groups, the ID token carries
``_claim_names: {"groups": "src1"}`` and ``_claim_sources`` instead of ``groups``, and the app asks
Microsoft Graph (documented: "Groups overage claim", Microsoft identity platform; the legacy
``_claim_sources`` endpoint points at the retired AAD Graph, so we call MS Graph instead).

The engine calls ``POST {graph_url}/v1.0/users/{oid}/getMemberObjects`` itself, for the ``oid``
of the *validated* ID token, with the access token the client got at sign-in (scope
``GroupMember.Read.All`` or ``User.Read``+``Directory.Read.All``): Graph checks that token, so the
client cannot make up groups; it can at most withhold the token, and then the sign-in is refused.
"""

from __future__ import annotations

from typing import Any

from core.identity.errors import IdpError, TokenRefused
from core.identity.keys import TIMEOUT

MAX_PAGES = 50


def has_overage(claims: dict[str, Any], groups_claim: str = "groups") -> bool:
    """The token names its groups elsewhere (``_claim_names.groups``) instead of carrying them."""
    names = claims.get("_claim_names")
    return isinstance(names, dict) and groups_claim in names and groups_claim not in claims


def member_objects(graph_url: str, oid: str, access_token: str, verify: str | bool) -> list[str]:
    """The ids of every group (transitively) that user ``oid`` belongs to, from Graph."""
    import requests

    url: str | None = f"{graph_url.rstrip('/')}/v1.0/users/{requests.utils.quote(oid, safe='')}/getMemberObjects"
    out: list[str] = []
    body: dict[str, Any] | None = {"securityEnabledOnly": False}
    for _ in range(MAX_PAGES):
        if url is None:
            return out
        try:
            headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
            r = (requests.post(url, json=body, headers=headers, timeout=TIMEOUT, verify=verify) if body is not None
                 else requests.get(url, headers=headers, timeout=TIMEOUT, verify=verify))
        except requests.RequestException as exc:
            raise IdpError(f"cannot reach Microsoft Graph at {graph_url} to read your groups: {type(exc).__name__}. "
                           "Check graph_url and the network.") from None
        if r.status_code in (401, 403):
            raise TokenRefused("Microsoft Graph refused to list your groups (the token has too many groups to carry "
                               "them); the app registration needs GroupMember.Read.All, granted by an Entra admin.",
                               permission="sso")
        if r.status_code != 200:
            raise IdpError(f"Microsoft Graph answered HTTP {r.status_code} when reading your groups; try again.")
        try:
            doc = r.json()
        except ValueError:
            raise IdpError("Microsoft Graph answered something that is not JSON.") from None
        out.extend(str(v) for v in doc.get("value", []) if isinstance(v, str))
        nxt = doc.get("@odata.nextLink")
        url, body = (str(nxt), None) if isinstance(nxt, str) and nxt.startswith(graph_url.rstrip("/")) else (None, None)
    return out
