"""The client's sign-in flows against the TLS fake provider: RFC 8628 device flow (generic and
through msal), refresh, and authorization code + PKCE with a loopback redirect."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import requests

from core.identity import flows
from core.identity.errors import IdpError, SignInFailed
from core.identity.flows import Provider

from .fake_idp import CLIENT_ID, FakeIdp


def generic(idp: FakeIdp, **over: object) -> Provider:
    row = {"name": "corp", "kind": "oidc", "client_id": CLIENT_ID, "issuer": idp.issuer, "authority": None,
           "scopes": ["openid", "profile", "email", "offline_access"], "ca_bundle": str(idp.ca_path), **over}
    return Provider.of(row)


def entra(idp: FakeIdp) -> Provider:
    return generic(idp, name="entra1", kind="entra", issuer=None, authority=idp.authority,
                   scopes=["openid", "User.Read"])


class Sleeps:
    """Records the waits a flow asks for instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.t = 0.0

    def sleep(self, s: float) -> None:
        self.waits.append(s)
        self.t += s

    def clock(self) -> float:
        return self.t


def test_device_flow_polls_through_pending_and_slow_down(idp: FakeIdp) -> None:
    idp.pending_polls = 3
    idp.slow_down_polls = {2}
    shown: list[str] = []
    s = Sleeps()
    tokens = flows.device_flow(generic(idp), shown.append, sleep=s.sleep, clock=s.clock)
    assert "ABCD-EFGH" in shown[0]
    assert tokens.id_token.count(".") == 2 and tokens.refresh_token
    # interval 1, then slow_down on poll 2 adds 5 s for every later poll (RFC 8628 3.5)
    assert s.waits == [1.0, 1.0, 6.0, 6.0]


def test_device_flow_expired_and_declined(idp: FakeIdp) -> None:
    idp.auto_approve = False
    idp.device_expires_in = 3
    s = Sleeps()
    with pytest.raises(SignInFailed, match="expired before it was entered") as info:
        flows.device_flow(generic(idp), lambda _m: None, sleep=s.sleep, clock=s.clock)
    assert info.value.exit_code == 1
    idp.device_expires_in = 600
    idp.deny = True
    with pytest.raises(SignInFailed, match="declined"):
        flows.device_flow(generic(idp), lambda _m: None, sleep=Sleeps().sleep)


def test_device_flow_expired_token_from_the_provider(idp: FakeIdp) -> None:
    idp.auto_approve = False
    idp.device_expires_in = -1  # the provider itself says expired_token at the first poll
    with pytest.raises(SignInFailed, match="expired") as info:
        flows.device_flow(generic(idp), lambda _m: None, sleep=Sleeps().sleep, clock=lambda: -1e9)
    assert info.value.extra["idp_error"] == "expired_token"


def test_refresh_and_a_revoked_refresh_token(idp: FakeIdp) -> None:
    t = flows.device_flow(generic(idp), lambda _m: None, sleep=Sleeps().sleep)
    assert t.refresh_token
    again = flows.refresh(generic(idp), t.refresh_token)
    assert again.id_token != t.id_token
    with pytest.raises(SignInFailed, match="invalid_grant"):
        flows.refresh(generic(idp), t.refresh_token)  # rotated: the old one is gone


def test_unreachable_and_untrusted_provider(idp: FakeIdp, tmp_path: Path) -> None:
    with pytest.raises(IdpError, match="ca_bundle"):
        flows.device_flow(generic(idp, ca_bundle=None), lambda _m: None)
    with pytest.raises(IdpError, match="HTTP 404"):
        flows.device_flow(generic(idp, issuer=idp.base + "/nowhere"), lambda _m: None)


def test_pkce_with_loopback_redirect(idp: FakeIdp) -> None:
    seen: list[str] = []

    def browser(url: str) -> None:  # the "browser": follows the IdP's redirect to the loopback listener
        seen.append(url)
        r = requests.get(url, verify=str(idp.ca_path), timeout=10)
        assert r.status_code == 200 and "sign-in received" in r.text

    tokens = flows.pkce_flow(generic(idp), browser, timeout=20)
    assert "code_challenge_method=S256" in seen[0] and "nonce=" in seen[0]
    assert tokens.nonce and tokens.id_token


def test_pkce_refuses_a_forged_state(idp: FakeIdp) -> None:
    def attacker(url: str) -> None:
        port = url.split("redirect_uri=http%3A%2F%2F127.0.0.1%3A", 1)[1].split("%2F", 1)[0]
        requests.get(f"http://127.0.0.1:{port}/callback?code=stolen&state=guess", timeout=10)

    with pytest.raises(SignInFailed, match="state does not match"):
        flows.pkce_flow(generic(idp), attacker, timeout=20)


def test_pkce_wrong_verifier_is_refused_by_the_provider(idp: FakeIdp, monkeypatch: pytest.MonkeyPatch) -> None:
    real = flows.pkce_pair
    monkeypatch.setattr(flows, "pkce_pair", lambda: (real()[0], real()[1]))  # verifier and challenge of two pairs

    def browser(url: str) -> None:
        requests.get(url, verify=str(idp.ca_path), timeout=10)

    with pytest.raises(SignInFailed, match="invalid_grant"):
        flows.pkce_flow(generic(idp), browser, timeout=20)


def test_msal_device_flow_with_a_0600_cache(idp: FakeIdp, tmp_path: Path) -> None:
    cache = tmp_path / "msal.json"
    shown: list[str] = []
    tokens = flows.msal_device_flow(entra(idp), shown.append, str(cache))
    assert "ABCD-EFGH" in shown[0] and tokens.id_token.count(".") == 2 and tokens.access_token
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    # A second login refreshes silently (no code shown), with a fresh ID token.
    shown.clear()
    again = flows.msal_device_flow(entra(idp), shown.append, str(cache))
    assert shown == [] and again.id_token != tokens.id_token
    assert flows.msal_forget(entra(idp), str(cache)) == 1


def test_msal_device_flow_declined(idp: FakeIdp, tmp_path: Path) -> None:
    idp.deny = True
    with pytest.raises(SignInFailed, match="declined"):
        flows.msal_device_flow(entra(idp), lambda _m: None, str(tmp_path / "c.json"))


def test_msal_through_requests_ca_bundle(idp: FakeIdp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No ca_bundle in config: msal (requests) trusts what REQUESTS_CA_BUNDLE names, as documented.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.ca_path))
    p = entra(idp)
    p.ca_bundle = None
    tokens = flows.msal_device_flow(p, lambda _m: None, str(tmp_path / "c.json"))
    assert tokens.id_token.count(".") == 2
