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
from core.identity.keys import ProviderKeys

_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _refuse(why: str, **extra: Any) -> TokenRefused:
    return TokenRefused(f"the ID token was refused: {why}. Sign in again (musubi login); if it persists, "
                        "check the provider's settings in config.toml (docs/identity.md).", permission="sso", **extra)


def validate_id_token(
    token: str, keys: ProviderKeys, *, client_id: str, skew_s: int = 120, nonce: str | None = None,
    max_age_s: int | None = None, now: float | None = None,
) -> dict[str, Any]:
    """The token's claims once every check passed; :class:`TokenRefused` naming the first that failed."""
    import jwt  # lazy

    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 64_000:
        raise _refuse("it is not a signed JWT (three dot-separated parts)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refuse("its header is not a valid JOSE header") from None
    alg = header.get("alg")
    allowed = keys.algorithms()
    if not isinstance(alg, str) or alg not in allowed:
        raise _refuse(f"algorithm {str(alg)[:20]!r} is not allowed (allowed: {', '.join(allowed) or 'none'})")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("its header names no key (kid)")
    jwk = keys.key(kid)
    declared = getattr(jwk, "_jwk_data", {}).get("alg")  # the JWK's own "alg", when it names one
    if jwk.key_type != _FAMILY.get(alg[:2]) or declared not in (None, alg):
        raise _refuse(f"key {kid[:64]!r} ({jwk.key_type}) does not fit algorithm {alg}")
    issuer = keys.issuer()
    try:
        claims: dict[str, Any] = jwt.decode(
            token, jwk.key, algorithms=[alg], audience=client_id, issuer=issuer, leeway=skew_s,
            options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_iat": True},
        )
    except jwt.InvalidSignatureError:
        raise _refuse("its signature does not verify") from None
    except jwt.ExpiredSignatureError:
        raise _refuse("it has expired (exp)") from None
    except jwt.ImmatureSignatureError:
        raise _refuse("it is not valid yet (nbf/iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise _refuse(f"it was not issued for this application (aud is not {client_id!r})") from None
    except jwt.InvalidIssuerError:
        raise _refuse(f"it was not issued by {issuer!r} (iss)") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _refuse(f"it lacks the {exc.claim!r} claim") from None
    except jwt.PyJWTError as exc:
        raise _refuse(f"{type(exc).__name__}") from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise _refuse("it has several audiences and azp is not this application")
    t = time.time() if now is None else now
    if max_age_s is not None and float(claims["iat"]) < t - max_age_s - skew_s:
        raise _refuse(f"it was issued more than {max_age_s} s ago (iat); the engine takes fresh tokens only")
    if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise _refuse("its nonce is not the one this sign-in sent")
    return claims
