"""A provider's discovery document and signing keys, fetched over TLS and cached.

Synchronous (``requests``, which msal uses too): the engine calls it in a thread.  The JWKS is
refetched when a token names a ``kid`` it does not hold, at most once per
:data:`MIN_REFETCH_S` (so a flood of made-up ``kid`` s cannot turn the engine into a load
generator against the provider); a ``kid`` still unknown after that refetch is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from core.identity.errors import IdpError, TokenRefused
from core.identity.redact import redact
from core.identity.settings import ProviderSettings

DISCOVERY_TTL_S = 3600.0
MIN_REFETCH_S = 10.0
TIMEOUT = (5.0, 15.0)  # connect, read (seconds): never an unbounded wait on the provider


def get_json(url: str, verify: str | bool, *, session: Any = None, what: str = "document") -> Any:
    """GET ``url`` and return its JSON; :class:`IdpError` naming the URL and the fix otherwise."""
    import requests  # lazy: only sign-in needs it

    http = session or requests
    try:
        r = http.get(url, timeout=TIMEOUT, verify=verify, headers={"Accept": "application/json"})
    except requests.exceptions.SSLError as exc:
        raise IdpError(f"TLS to {url} failed ({redact(str(exc))[:200]}). If the provider uses a private CA, "
                       "set ca_bundle in its [sso.providers.NAME] section.") from None
    except requests.RequestException as exc:
        raise IdpError(f"cannot reach the identity provider at {url}: {type(exc).__name__}. "
                       "Check the URL in config.toml and the network.") from None
    if r.status_code != 200:
        raise IdpError(f"the identity provider answered HTTP {r.status_code} for its {what} at {url}; "
                       "check issuer/authority in config.toml.")
    try:
        return r.json()
    except ValueError:
        raise IdpError(f"the identity provider's {what} at {url} is not JSON.") from None


class ProviderKeys:
    """Discovery and JWKS of one provider, shared by every sign-in through it."""

    def __init__(self, settings: ProviderSettings, *, clock: Callable[[], float] = time.monotonic,
                 session: Any = None) -> None:
        self.settings = settings
        self._clock = clock
        self._session = session
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0
        self._keys: dict[str, Any] = {}  # kid -> jwt.PyJWK
        self._fetched_at: float | None = None
        self.fetches = 0  # JWKS fetches so far (tests look)

    @property
    def verify(self) -> str | bool:
        return self.settings.ca_bundle or True

    def discovery(self) -> dict[str, Any]:
        """The provider's OpenID configuration (cached for an hour), its issuer checked."""
        with self._lock:
            if self._discovery is not None and self._clock() - self._discovered_at < DISCOVERY_TTL_S:
                return self._discovery
            doc = get_json(self.settings.discovery_url(), self.verify, session=self._session, what="discovery document")
            ok = isinstance(doc, dict) and isinstance(doc.get("issuer"), str) and isinstance(doc.get("jwks_uri"), str)
            if not ok:
                raise IdpError(f"the discovery document at {self.settings.discovery_url()} lacks issuer or jwks_uri.")
            want = self.settings.issuer
            if want and doc["issuer"] != want:
                # OIDC Discovery 4.3: the issuer must be exactly the one we asked.
                raise IdpError(f"the provider's discovery says issuer {doc['issuer']!r}, config.toml says {want!r}; "
                               "set issuer to the provider's exact value.")
            if "{tenantid}" in doc["issuer"]:
                raise IdpError("the discovery issuer is a multi-tenant template; set authority to one tenant id.")
            self._discovery, self._discovered_at = doc, self._clock()
            return doc

    def issuer(self) -> str:
        """The exact ``iss`` tokens must carry."""
        return self.settings.issuer or str(self.discovery()["issuer"])

    def algorithms(self) -> list[str]:
        """Algorithms both config.toml and the provider's discovery allow (asymmetric only)."""
        listed = self.discovery().get("id_token_signing_alg_values_supported") or ["RS256"]
        return [a for a in self.settings.algorithms if a in listed]

    def _fetch(self) -> None:
        import jwt  # lazy: PyJWT with its cryptography backend

        uri = str(self.discovery()["jwks_uri"])
        doc = get_json(uri, self.verify, session=self._session, what="signing keys (JWKS)")
        self.fetches += 1
        self._fetched_at = self._clock()
        keys: dict[str, Any] = {}
        for jwk in (doc.get("keys") or []) if isinstance(doc, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("kty") == "oct":
                continue  # a symmetric key can never verify an ID token here
            try:
                keys[jwk["kid"]] = jwt.PyJWK(jwk)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError):
                continue  # a key type PyJWT cannot use: skipped, not fatal for the others
        self._keys = keys

    def key(self, kid: str) -> Any:
        """The verification key ``kid``: from the cache, else after one refetch; refused otherwise."""
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            fresh = self._fetched_at is None or self._clock() - self._fetched_at >= MIN_REFETCH_S
        if fresh:
            self._fetch()
            with self._lock:
                if kid in self._keys:
                    return self._keys[kid]
        raise TokenRefused(f"the ID token is signed with key {kid[:64]!r}, which the provider does not publish "
                           "(after a refetch of its keys); sign in again.", permission="sso")
