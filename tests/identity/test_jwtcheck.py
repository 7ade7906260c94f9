"""The shared JWT checks (core/identity/jwtcheck.py) on their own: each failure in the verifier's words,
the key lookup's extra handed back, and the issuer's settings asked only when a check needs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from core.identity.jwtcheck import Wording, verify_jwt

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ISS, AUD = "https://issuer.example", "app-1"
WORDS = Wording(not_jwt="not jwt", bad_header="bad header", bad_alg="alg {alg} not in {allowed}", no_kid="no kid",
                bad_signature="bad sig", expired="expired", not_yet="not yet", wrong_audience="aud {audience}",
                wrong_issuer="iss {issuer}", missing_claim="lacks {claim}", other="other {error}")


class Refused(Exception):
    pass


def token(key: Any = KEY, *, kid: str | None = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "exp": now + 300, "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg,
                      headers={"kid": kid} if kid is not None else {})


class Issuer:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def algorithms(self) -> list[str]:
        self.asked.append("algorithms")
        return ["RS256"]

    def issuer(self) -> str:
        self.asked.append("issuer")
        return ISS


def check(tok: object, issuer: Issuer | None = None) -> tuple[dict[str, Any], str]:
    i = issuer or Issuer()

    def key_for(kid: str, alg: str) -> tuple[Any, str]:
        if kid != "k1":
            raise Refused(f"unknown key {kid}")
        return KEY.public_key(), f"extra of {kid}/{alg}"

    return verify_jwt(tok, max_len=16_000, algorithms=i.algorithms, key_for=key_for, audience=AUD, issuer=i.issuer,
                      skew_s=60, require=("iss", "aud", "exp"), wording=WORDS, refuse=Refused)


def test_a_good_token_gives_its_claims_and_the_key_lookups_extra() -> None:
    claims, extra = check(token(sub="alice"))
    assert claims["sub"] == "alice" and extra == "extra of k1/RS256"


CASES: dict[str, tuple[Callable[[], object], str]] = {  # built in the test: ids stay the same on every worker
    "two parts": (lambda: "a.b", "not jwt"),
    "too long": (lambda: "x" * 16_001 + "..", "not jwt"),
    "not base64": (lambda: "a.b.c", "bad header"),
    "no kid": (lambda: token(kid=None), "no kid"),
    "unknown kid": (lambda: token(kid="k9"), "unknown key k9"),
    "other key": (lambda: token(OTHER), "bad sig"),
    "expired": (lambda: token(exp=int(time.time()) - 600), "expired"),
    "nbf ahead": (lambda: token(nbf=int(time.time()) + 600), "not yet"),
    "audience": (lambda: token(aud="someone-else"), "aud 'app-1'"),
    "issuer": (lambda: token(iss="https://evil.example"), "iss 'https://issuer.example'"),
    "no exp": (lambda: token(exp=None), "lacks 'exp'"),
    "hs256": (lambda: token(b"k" * 32, alg="HS256"), "alg 'HS256' not in RS256"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_is_said_in_the_verifiers_words(case: str) -> None:
    make, says = CASES[case]
    with pytest.raises(Refused) as info:
        check(make())
    assert str(info.value) == says


def test_a_malformed_token_never_asks_for_the_issuers_settings() -> None:
    i = Issuer()
    with pytest.raises(Refused, match="not jwt"):
        check(12, i)
    with pytest.raises(Refused, match="bad header"):
        check("a.b.c", i)
    assert i.asked == []
    check(token(), i)
    assert i.asked == ["algorithms", "issuer"]

