"""The JWT checks shared by the engine's two token verifiers, worded by each.

:mod:`core.identity.tokens` (SSO ID tokens) and :mod:`core.integrations.botauth` (Bot Framework
activities) check a token the same way: a signed JWT of bounded size, a JOSE header whose ``alg``
is allowed and whose ``kid`` names a key the issuer publishes, then PyJWT's signature, ``iss``,
``aud`` and time checks with a skew.  What differs is a parameter: the allowed algorithms, how a
key is found (and what else comes with it, such as a Bot Framework key's endorsements), the
required claims, and each refusal's words (:class:`Wording`), so every message stays as precise
as its verifier's own.  Messages never echo the token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Wording:
    """What a verifier says for each failed check; ``{alg}``, ``{allowed}``, ``{audience}``, ``{issuer}``,
    ``{claim}`` and ``{error}`` are filled in (all but ``{allowed}`` and ``{error}`` quoted)."""

    not_jwt: str
    bad_header: str
    bad_alg: str
    no_kid: str
    bad_signature: str
    expired: str
    not_yet: str
    wrong_audience: str
    wrong_issuer: str
    missing_claim: str
    other: str


def verify_jwt(
    token: object, *, max_len: int, algorithms: Callable[[], Sequence[str]],
    key_for: Callable[[str, str], tuple[Any, T]], audience: str, issuer: Callable[[], str], skew_s: int,
    require: Sequence[str], wording: Wording, refuse: Callable[[str], Exception],
) -> tuple[dict[str, Any], T]:
    """The token's claims, and what ``key_for(kid, alg)`` gave besides the verification key.

    ``algorithms`` and ``issuer`` are asked only when a check needs them (an SSO provider's come from
    its discovery document, which a malformed token never makes us fetch).  ``key_for`` returns
    ``(key, extra)`` or raises its own refusal (unknown ``kid``, a key that does not fit ``alg``);
    every other failure raises ``refuse(message)`` with ``wording``'s message.
    """
    import jwt  # lazy: only a sign-in or a bot message needs it

    if not isinstance(token, str) or token.count(".") != 2 or len(token) > max_len:
        raise refuse(wording.not_jwt)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise refuse(wording.bad_header) from None
    alg = header.get("alg")
    allowed = algorithms()
    if not isinstance(alg, str) or alg not in allowed:
        raise refuse(wording.bad_alg.format(alg=repr(str(alg)[:20]), allowed=", ".join(allowed) or "none"))
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise refuse(wording.no_kid)
    key, extra = key_for(kid, alg)
    iss = issuer()
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg], audience=audience, issuer=iss, leeway=skew_s,
            options={"require": list(require), "verify_iat": True},
        )
    except jwt.InvalidSignatureError:
        raise refuse(wording.bad_signature) from None
    except jwt.ExpiredSignatureError:
        raise refuse(wording.expired) from None
    except jwt.ImmatureSignatureError:
        raise refuse(wording.not_yet) from None
    except jwt.InvalidAudienceError:
        raise refuse(wording.wrong_audience.format(audience=repr(audience))) from None
    except jwt.InvalidIssuerError:
        raise refuse(wording.wrong_issuer.format(issuer=repr(iss))) from None
    except jwt.MissingRequiredClaimError as exc:
        raise refuse(wording.missing_claim.format(claim=repr(exc.claim))) from None
    except jwt.PyJWTError as exc:
        raise refuse(wording.other.format(error=type(exc).__name__)) from None
    return claims, extra
