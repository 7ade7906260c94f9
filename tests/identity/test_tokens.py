"""ID token validation against the TLS fake provider: the happy path, rotation, and the attacks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from core.identity.errors import IdpError, TokenRefused
from core.identity.keys import ProviderKeys
from core.identity.settings import ProviderSettings
from core.identity.tokens import validate_id_token

from .fake_idp import CLIENT_ID, FakeIdp


def provider(idp: FakeIdp, **over: object) -> ProviderSettings:
    kw: dict[str, object] = {"client_id": CLIENT_ID, "issuer": idp.issuer, "ca_bundle": str(idp.ca_path), **over}
    return ProviderSettings(**kw)  # type: ignore[arg-type]


def check(idp: FakeIdp, token: str, keys: ProviderKeys | None = None, **kw: Any) -> dict[str, Any]:
    return validate_id_token(token, keys or ProviderKeys(provider(idp)), client_id=CLIENT_ID, **kw)


def refused(idp: FakeIdp, token: str, match: str, **kw: Any) -> TokenRefused:
    with pytest.raises(TokenRefused, match=match) as info:
        check(idp, token, **kw)
    assert token not in info.value.message  # never echoed
    return info.value


def test_valid_token_gives_its_claims(idp: FakeIdp) -> None:
    claims = check(idp, idp.mint())
    assert claims["sub"] == "sub-alice" and claims["groups"] == ["grp-dev"]


def test_wrong_audience_issuer_and_times_are_refused(idp: FakeIdp) -> None:
    now = int(time.time())
    refused(idp, idp.mint(idp.claims(aud="someone-else")), "not issued for this application")
    refused(idp, idp.mint(idp.claims(iss="https://evil.example/v2.0")), "not issued by")
    refused(idp, idp.mint(idp.claims(exp=now - 600, iat=now - 4000, nbf=now - 4000)), "expired")
    refused(idp, idp.mint(idp.claims(nbf=now + 900)), "not valid yet")
    refused(idp, idp.mint(idp.claims(iat=now + 900)), "not valid yet")
    refused(idp, idp.mint(idp.claims(sub=None)), "lacks the 'sub' claim")


def test_small_skew_is_allowed(idp: FakeIdp) -> None:
    now = int(time.time())
    assert check(idp, idp.mint(idp.claims(exp=now - 30)), skew_s=120)["sub"] == "sub-alice"
    refused(idp, idp.mint(idp.claims(exp=now - 30)), "expired", skew_s=0)


def test_nonce_and_freshness(idp: FakeIdp) -> None:
    assert check(idp, idp.mint(idp.claims(nonce="n-1")), nonce="n-1")["nonce"] == "n-1"
    refused(idp, idp.mint(idp.claims(nonce="n-1")), "nonce", nonce="n-2")
    refused(idp, idp.mint(idp.claims()), "nonce", nonce="n-2")  # the flow sent one, the token has none
    old = int(time.time()) - 3000
    refused(idp, idp.mint(idp.claims(iat=old, nbf=old)), "issued more than 600 s ago", max_age_s=600)


def test_several_audiences_need_azp(idp: FakeIdp) -> None:
    refused(idp, idp.mint(idp.claims(aud=[CLIENT_ID, "other"])), "azp")
    assert check(idp, idp.mint(idp.claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID)))["azp"] == CLIENT_ID


def test_tampered_signature_and_payload(idp: FakeIdp) -> None:
    head, body, sig = idp.mint().split(".")
    flipped = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    refused(idp, f"{head}.{body}.{flipped}", "signature does not verify")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["groups"] = ["grp-admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    refused(idp, f"{head}.{forged}.{sig}", "signature does not verify")


def test_alg_none_is_refused(idp: FakeIdp) -> None:
    token = jwt.encode(idp.claims(), None, algorithm="none", headers={"kid": idp.current_kid})  # type: ignore[arg-type]
    refused(idp, token, "algorithm 'none' is not allowed")
    refused(idp, token.rsplit(".", 1)[0] + ".", "algorithm 'none' is not allowed")


def test_hs256_with_the_public_key_as_secret_is_refused(idp: FakeIdp) -> None:
    # The classic confusion: sign with HMAC using the provider's public key bytes as the secret.
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", "kid": idp.current_kid}
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    signing_input = f"{b64(header)}.{b64(idp.claims())}"
    mac = hmac.new(idp.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    refused(idp, token, "algorithm 'HS256' is not allowed")


def test_garbage_is_refused_without_echo(idp: FakeIdp) -> None:
    refused(idp, "not-a-jwt", "not a signed JWT")
    refused(idp, "a.b.c", "not a valid JOSE header")
    token = idp.mint(headers={"kid": ""})
    refused(idp, token, "names no key")


def test_key_rotation_refetches_once(idp: FakeIdp) -> None:
    keys = ProviderKeys(provider(idp))
    check(idp, idp.mint(), keys)
    assert keys.fetches == 1
    keys._fetched_at = -1e9  # the refetch rate limit has passed
    idp.rotate(drop_old=True)
    assert check(idp, idp.mint(), keys)["sub"] == "sub-alice"  # new kid: one refetch finds it
    assert keys.fetches == 2


def test_unknown_kid_after_refetch_is_refused_and_refetches_are_rate_limited(idp: FakeIdp) -> None:
    keys = ProviderKeys(provider(idp))
    check(idp, idp.mint(), keys)
    keys._fetched_at = -1e9
    with pytest.raises(TokenRefused, match="does not publish"):
        check(idp, idp.mint(kid="made-up"), keys)
    assert keys.fetches == 2
    with pytest.raises(TokenRefused, match="does not publish"):
        check(idp, idp.mint(kid="made-up-2"), keys)  # within MIN_REFETCH_S: no third fetch
    assert keys.fetches == 2


def test_only_the_algorithms_discovery_lists(idp: FakeIdp) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_key = ec.generate_private_key(ec.SECP256R1())
    refused(idp, idp.mint(alg="ES256", key=ec_key), "algorithm 'ES256' is not allowed")
    keys = ProviderKeys(provider(idp, algorithms=["PS256"]))
    with pytest.raises(TokenRefused, match="allowed: none"):
        check(idp, idp.mint(), keys)


def test_issuer_mismatch_in_discovery_and_tls_errors(idp: FakeIdp) -> None:
    keys = ProviderKeys(provider(idp, issuer=idp.authority + "/v2.0/"))
    with pytest.raises(IdpError, match="discovery says issuer"):
        check(idp, idp.mint(), keys)
    keys = ProviderKeys(provider(idp, ca_bundle=None))  # the system CAs do not know the test CA
    with pytest.raises(IdpError, match="ca_bundle"):
        check(idp, idp.mint(), keys)


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="client_id is required"):
        ProviderSettings(issuer="https://x.example")
    with pytest.raises(ValueError, match="https"):
        ProviderSettings(client_id="c", issuer="http://x.example")
    with pytest.raises(ValueError, match="HMAC"):
        ProviderSettings(client_id="c", issuer="https://x.example", algorithms=["HS256"])
    with pytest.raises(ValueError, match="common"):
        ProviderSettings(kind="entra", client_id="c", authority="https://login.microsoftonline.com/common")


# RFC 7515 Appendix A.2 (JWS using RS256): its public key and its signed example, as the RFC prints
# them (input nobody here wrote; the values as quoted by several public JOSE test suites).
RFC7515_A2_N = (
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCg"
    "NMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665"
    "xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
)
RFC7515_A2_JWS = (
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dn"
    "ZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)


def test_rfc7515_a2_key_and_signature(idp: FakeIdp) -> None:
    idp.extra_jwks = [{"kty": "RSA", "kid": "rfc7515-a2", "n": RFC7515_A2_N, "e": "AQAB"},
                      {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]  # a symmetric key is never loaded
    keys = ProviderKeys(provider(idp))
    key = keys.key("rfc7515-a2")  # the RFC's JWK, loaded from a JWKS by our key cache
    assert key.key_type == "RSA"
    claims = jwt.decode(RFC7515_A2_JWS, key.key, algorithms=["RS256"], options={"verify_exp": False})
    assert claims["iss"] == "joe" and claims["http://example.com/is_root"] is True
    with pytest.raises(TokenRefused, match="does not publish"):
        keys.key("hmac")
    # As an ID token the RFC example is refused before any key is tried: its header names no kid.
    with pytest.raises(TokenRefused, match="names no key"):
        check(idp, RFC7515_A2_JWS, keys)
    # One flipped signature byte and the RFC's own key no longer verifies it.
    i = len(RFC7515_A2_JWS) - 20
    bad = RFC7515_A2_JWS[:i] + ("A" if RFC7515_A2_JWS[i] != "A" else "B") + RFC7515_A2_JWS[i + 1:]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(bad, key.key, algorithms=["RS256"], options={"verify_exp": False})
