"""`musubi serve web --oidc PROVIDER` against the TLS fake IdP: authorization code + PKCE with the server's
redirect URI, state and nonce checked, the ID token validated by the engine like `musubi login`'s, then a
remote session (`oidc:<provider>`) for the mapped user, its groups through the SSO rules (docs/remote.md#oidc)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from core.api.sso import SsoVerified
from core.errors import MusubiError
from tests.serve.webkit import read_until, web_server
from tui.serve.signin import COOKIE
from tui.serve.web import WebOptions, WebServer

from ..engine.helpers import Home
from ..engine.test_api_models import _exactly
from .fake_idp import FakeIdp
from .test_engine_sso import eng, idp

__all__ = ["eng", "idp"]


def users_file(h: Home, text: str) -> Path:
    p = Path(h.dir) / "oidc-users"
    p.write_text(text)
    os.chmod(p, 0o600)
    return p


async def at_idp(http: aiohttp.ClientSession, idp: FakeIdp, url: str) -> str:
    """The browser at the provider (which approves at once): the redirect back to the server."""
    tls = ssl.create_default_context(cafile=str(idp.ca_path))
    async with http.get(url, allow_redirects=False, ssl=tls) as r:
        assert r.status == 302, await r.text()
        return str(r.headers["Location"])


async def start(http: aiohttp.ClientSession, srv: WebServer) -> str:
    async with http.get(f"{srv.public_url}/oidc/login", allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        return str(r.headers["Location"])


async def callback(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str | None]:
    async with http.get(url, allow_redirects=False) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, await r.text(), morsel.value if morsel else None


def with_query(url: str, **change: str) -> str:
    u = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    return urlunsplit(u._replace(query=urlencode({**q, **change})))


async def test_an_oidc_sign_in_serves_the_mapped_user(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("woidc")
    eng.client(t).put("/v1/sso/rules", {"value": "grp-web", "role": "member", "provider": "corp"})
    idp.user.groups, idp.user.roles = ["grp-web"], []
    users = users_file(eng, f"musubi:user=wendy,tenant={t} {idp.user.email}\n")
    srv, link = await web_server(eng, token=None, oidc="corp", oidc_users=users)
    try:
        async with aiohttp.ClientSession() as http:
            go = await start(http, srv)
            q = parse_qs(urlsplit(go).query)
            assert q["redirect_uri"] == [f"{srv.public_url}/oidc/callback"] and q["code_challenge_method"] == ["S256"]
            assert q["state"] and q["nonce"] and q["response_type"] == ["code"]
            back = await at_idp(http, idp, go)
            status, text, cookie = await callback(http, back)
            assert status == 200 and cookie and "url=/" in text, text
            # the same answer again: its state was used up (and the code too)
            status, text, again = await callback(http, back)
            assert status == 403 and "unknown or expired state" in text and again is None
            async with http.ws_connect(f"{srv.public_url}/ws?width=100&height=30",
                                       headers={"Cookie": f"{COOKIE}={cookie}", "Origin": srv.origin}) as ws:
                await read_until(ws, b"user wendy")  # no role before: the rule granted it at this sign-in
    finally:
        await srv.close()
    assert f"sign-in (oidc: {idp.user.email})" in link.reasons("login")
    minted = [e for e in eng.audit(t) if e["action"] == "session.mint"][-1]["details"]
    assert minted["auth"] == "oidc:corp" and minted["mapped"] == {t: "grant"}
    assert [e["actor"] for e in eng.audit(t) if e["action"] == "sso.map"] == ["sso:corp"]
    verified = eng.client().get("/v1/audit", {"system": "true", "action": "sso.verify", "limit": 1000})
    assert verified and verified[0]["details"]["subject"] == idp.user.sub
    assert "id_token" not in str(verified) and "code-" not in str(link.events)


async def test_forged_state_wrong_nonce_and_unlisted_subjects_are_refused(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("woidc2", {"wendy": "member"})
    users = users_file(eng, f"musubi:user=wendy,tenant={t} someone-else@example.com\n")
    srv, link = await web_server(eng, token=None, oidc="corp", oidc_users=users)
    try:
        async with aiohttp.ClientSession() as http:
            back = await at_idp(http, idp, await start(http, srv))
            status, text, cookie = await callback(http, with_query(back, state="forged"))
            assert status == 403 and "unknown or expired state" in text and cookie is None
            # the provider was asked with another nonce than the one this server keeps: the engine refuses it
            go = await start(http, srv)
            back = await at_idp(http, idp, with_query(go, nonce="not-the-servers"))
            status, text, cookie = await callback(http, back)
            assert status == 403 and "nonce" in text and cookie is None, text
            # a valid sign-in of someone the users file does not list
            back = await at_idp(http, idp, await start(http, srv))
            status, text, cookie = await callback(http, back)
            assert status == 403 and "not in the OIDC users file" in text and cookie is None, text
            async with http.get(f"{srv.public_url}/", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/login"
    finally:
        await srv.close()
    refused = link.reasons("refused")
    assert sum(r.startswith("OIDC: ") for r in refused) == 3, refused
    denied = eng.client().get("/v1/audit", {"system": "true", "action": "sso.verify", "limit": 1000})
    assert any(e["outcome"] == "denied" and "nonce" in e["details"]["reason"] for e in denied)


async def test_oidc_needs_a_users_file_and_a_known_provider(eng: Home) -> None:
    with pytest.raises(MusubiError, match="--oidc-users"):
        WebServer(eng.paths, WebOptions(port=0, oidc="corp"))
    with pytest.raises(MusubiError, match="no such provider"):
        await web_server(eng, token=None, oidc="nope", oidc_users=users_file(eng, ""))


def test_only_the_engine_user_may_have_tokens_verified(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("wv", {"mia": "member"})
    tok = eng.raw("POST", "/v1/sessions", {"user": "mia", "tenant": t, "purpose": "web"})[1]["token"]
    body: dict[str, Any] = {"provider": "corp", "id_token": idp.mint(idp.claims(nonce="n1")), "nonce": "n1"}
    status, out = eng.raw("POST", "/v1/sso/verify", body, headers={"X-Musubi-Session": tok})
    assert status == 403 and "only the OS user who runs the engine" in out["error"]["message"], out
    status, out = eng.raw("POST", "/v1/sso/verify", body)
    assert status == 200 and out["subject"] == idp.user.sub, out
    _exactly(out, SsoVerified)
    status, out = eng.raw("POST", "/v1/sso/verify", body)  # each token once
    assert status == 403 and out["error"]["code"] == "sso_token_replayed", out
    status, out = eng.raw("POST", "/v1/sso/verify", {**body, "nonce": ""})
    assert status == 400 and out["error"]["field"] == "nonce", out
