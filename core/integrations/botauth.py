"""Bot Framework (Teams bot) inbound authentication, checked inside the engine (api-notes §5.3).

The Bot Connector signs every activity it POSTs to the bot's ``/api/messages`` with an RS256
JWT in ``Authorization: Bearer``.  :func:`verify` accepts it only when all of these hold:

- the signature verifies with a key of the Bot Framework's JWKS (found through its OpenID
  metadata, ``https://login.botframework.com/v1/.well-known/openidconfiguration`` unless the
  tenant's ``bot_openid_url`` says otherwise); keys are cached for :data:`KEYS_TTL_S` and
  refetched on an unknown ``kid`` at most once per :data:`MIN_REFETCH_S`;
- ``iss`` is ``https://api.botframework.com``, ``aud`` is the bot's app id, ``exp``/``nbf``
  within a 5-minute skew;
- the ``serviceUrl`` claim equals the activity's ``serviceUrl``;
- the signing key's ``endorsements`` include the activity's ``channelId`` (else 403);
- the ``serviceUrl`` host is on the tenant's allow-list (``bot_service_hosts``), so a reply
  (which carries the bot's token) only ever goes to a host the admin named.

Synchronous (``requests``, like core/identity/keys.py): the engine calls it in a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from core.errors import PermissionDenied
from core.identity.jwtcheck import Wording, verify_jwt

ISSUER = "https://api.botframework.com"
OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
SKEW_S = 300
KEYS_TTL_S = 24 * 3600.0  # the SDK keeps them 5 days; a day picks up a rotation sooner
MIN_REFETCH_S = 10.0
TIMEOUT = (5.0, 15.0)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class BotRefused(PermissionDenied):
    """An inbound activity refused; ``code`` ``bad_token`` (401) or ``bot_forbidden`` (403)."""


def _refuse(why: str, forbidden: bool = False) -> BotRefused:
    return BotRefused(f"teams bot request refused: {why}.", code="bot_forbidden" if forbidden else "bad_token",
                      permission="teams-bot")


def bot_configured(settings: Mapping[str, Any]) -> bool:
    """Whether the tenant set a bot up to post to (the approval card then carries buttons)."""
    return all(settings.get(k) for k in ("bot_app_id", "bot_service_url", "bot_conversation"))


def allowed_hosts(raw: str | None) -> tuple[str, ...]:
    """The ``bot_service_hosts`` setting: host names (``host:port`` for a fake), commas or spaces."""
    return tuple(h.strip().lower() for h in (raw or "").replace(" ", ",").split(",") if h.strip())


def service_url_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    """https to an allow-listed host (plain http only to a loopback host, i.e. a test fake)."""
    try:
        parts = urlsplit(url)
        host, netloc = (parts.hostname or "").lower(), parts.netloc.lower()
    except ValueError:
        return False
    if not host or "@" in netloc or not (host in hosts or netloc in hosts):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)


def _get_json(url: str) -> Any:
    import requests  # lazy: only a Teams bot needs it

    try:
        r = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise _refuse(f"cannot fetch the Bot Framework keys from {url} ({type(exc).__name__})") from None
    if r.status_code != 200:
        raise _refuse(f"the Bot Framework metadata at {url} answered HTTP {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise _refuse(f"the Bot Framework metadata at {url} is not JSON") from None


class BotKeys:
    """The Bot Framework signing keys behind one OpenID metadata URL, with their endorsements."""

    def __init__(self, openid_url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.openid_url = openid_url
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Any, tuple[str, ...]]] = {}  # kid -> (PyJWK, endorsements)
        self._fetched_at: float | None = None
        self.fetches = 0

    def _fetch(self) -> None:
        import jwt

        meta = _get_json(self.openid_url)
        uri = meta.get("jwks_uri") if isinstance(meta, dict) else None
        if not isinstance(uri, str):
            raise _refuse(f"the Bot Framework metadata at {self.openid_url} names no jwks_uri")
        algs = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        if "RS256" not in algs:  # the token must use an algorithm the metadata lists, and RS256 is all we take
            raise _refuse(f"the Bot Framework metadata at {self.openid_url} does not list RS256")
        doc = _get_json(uri)
        keys: dict[str, tuple[Any, tuple[str, ...]]] = {}
        for jwk in (doc.get("keys") or []) if isinstance(doc, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
                continue
            try:
                key = jwt.PyJWK({k: v for k, v in jwk.items() if k != "endorsements"}, algorithm="RS256")
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError):
                continue
            ends = jwk.get("endorsements") or []
            keys[jwk["kid"]] = (key, tuple(str(e) for e in ends) if isinstance(ends, list) else ())
        self.fetches += 1
        self._keys, self._fetched_at = keys, self._clock()

    def key(self, kid: str) -> tuple[Any, tuple[str, ...]]:
        with self._lock:
            stale = self._fetched_at is None or self._clock() - self._fetched_at >= KEYS_TTL_S
            if kid in self._keys and not stale:
                return self._keys[kid]
            may = stale or self._clock() - (self._fetched_at or 0.0) >= MIN_REFETCH_S
            if may:
                self._fetch()
            if kid in self._keys:
                return self._keys[kid]
        raise _refuse(f"the token is signed with key {kid[:64]!r}, which the Bot Framework does not publish")


WORDING = Wording(
    not_jwt="the bearer token is not a signed JWT",
    bad_header="the token's header is not a valid JOSE header",
    bad_alg="algorithm {alg} is not RS256",
    no_kid="the token's header names no key (kid)",
    bad_signature="signature does not verify",
    expired="token expired (exp)",
    not_yet="token not valid yet (nbf)",
    wrong_audience="token is for another bot (aud is not this bot's app id)",
    wrong_issuer=f"token not issued by {ISSUER} (iss)",
    missing_claim="token lacks the {claim} claim",
    other="invalid token ({error})",
)


def verify(authorization: str | None, activity: dict[str, Any], keys: BotKeys, app_id: str,
           hosts: tuple[str, ...], *, now: float | None = None) -> dict[str, Any]:
    """The token's claims when the activity is authentic and for this bot; :class:`BotRefused` otherwise."""
    if not authorization or not authorization.startswith("Bearer "):
        raise _refuse("no Authorization: Bearer token")

    def key_for(kid: str, _alg: str) -> tuple[Any, tuple[str, ...]]:
        key, endorsements = keys.key(kid)
        return key.key, endorsements

    claims, endorsements = verify_jwt(authorization[7:].strip(), max_len=16_000, algorithms=lambda: ("RS256",),
                                      key_for=key_for, audience=app_id, issuer=lambda: ISSUER, skew_s=SKEW_S,
                                      require=("iss", "aud", "exp"), wording=WORDING, refuse=_refuse)
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or claims.get("serviceUrl") != service_url:
        raise _refuse("the token's serviceUrl claim is not the activity's serviceUrl")
    channel = activity.get("channelId")
    if not isinstance(channel, str) or channel not in endorsements:
        raise _refuse(f"the signing key is not endorsed for channel {str(channel)[:40]!r}", forbidden=True)
    if not service_url_allowed(service_url, hosts):
        raise _refuse(f"serviceUrl host {urlsplit(service_url).netloc[:100]!r} is not in bot_service_hosts",
                      forbidden=True)
    return claims
