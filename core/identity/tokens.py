"""ID token validation with PyJWT (signature by ``kid``, ``iss``, ``aud``/``azp``, times, ``nonce``).

Why PyJWT: it is maintained, already in the tree as msal's own dependency (``PyJWT[crypto]``),
verifies with ``cryptography``, takes an explicit algorithm allow-list and refuses an
asymmetric public key as an HMAC secret.  We add what a library cannot know:

- the algorithm must be one config.toml *and* the provider's discovery list, and asymmetric:
  ``alg: none`` and ``HS256`` (the "public key as HMAC secret" confusion) never get to a
  verifier; the key's type must fit the algorithm (an RSA key never checks an ES256 token);
- the key is chosen by the header's ``kid`` from the provider's JWKS (:mod:`core.identity.keys`);
- ``iss`` exact, ``aud`` contains the client id (``azp`` equal to it when there are several),
  ``exp``/``nbf``/``iat`` with the configured skew, ``iat`` no older than ``max_age_s``;
- ``nonce`` equal to the one the flow sent, when the flow sent one.

Messages name what failed, never the token.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from core.identity.errors import TokenRefused
from core.identity.jwtcheck import Wording, verify_jwt
from core.identity.keys import ProviderKeys

_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _refuse(why: str, **extra: Any) -> TokenRefused:
    return TokenRefused(f"the ID token was refused: {why}. Sign in again (musubi login); if it persists, "
                        "check the provider's settings in config.toml (docs/identity.md).", permission="sso", **extra)


WORDING = Wording(
    not_jwt="it is not a signed JWT (three dot-separated parts)",
    bad_header="its header is not a valid JOSE header",
    bad_alg="algorithm {alg} is not allowed (allowed: {allowed})",
    no_kid="its header names no key (kid)",
    bad_signature="its signature does not verify",
    expired="it has expired (exp)",
    not_yet="it is not valid yet (nbf/iat in the future)",
    wrong_audience="it was not issued for this application (aud is not {audience})",
    wrong_issuer="it was not issued by {issuer} (iss)",
    missing_claim="it lacks the {claim} claim",
    other="{error}",
)


def validate_id_token(
    token: str, keys: ProviderKeys, *, client_id: str, skew_s: int = 120, nonce: str | None = None,
    max_age_s: int | None = None, now: float | None = None,
) -> dict[str, Any]:
    """The token's claims once every check passed; :class:`TokenRefused` naming the first that failed."""

    def key_for(kid: str, alg: str) -> tuple[Any, None]:
        jwk = keys.key(kid)
        declared = getattr(jwk, "_jwk_data", {}).get("alg")  # the JWK's own "alg", when it names one
        if jwk.key_type != _FAMILY.get(alg[:2]) or declared not in (None, alg):
            raise _refuse(f"key {kid[:64]!r} ({jwk.key_type}) does not fit algorithm {alg}")
        return jwk.key, None

    claims, _ = verify_jwt(token, max_len=64_000, algorithms=keys.algorithms, key_for=key_for, audience=client_id,
                           issuer=keys.issuer, skew_s=skew_s, require=("iss", "aud", "exp", "iat", "sub"),
                           wording=WORDING, refuse=_refuse)
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise _refuse("it has several audiences and azp is not this application")
    t = time.time() if now is None else now
    if max_age_s is not None and float(claims["iat"]) < t - max_age_s - skew_s:
        raise _refuse(f"it was issued more than {max_age_s} s ago (iat); the engine takes fresh tokens only")
    if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise _refuse("its nonce is not the one this sign-in sent")
    return claims
