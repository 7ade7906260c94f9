"""``musubi serve web``: nothing without a sign-in, no session from a foreign Origin, a signed-in user served."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.engine.helpers import Home
from tui.serve.signin import COOKIE

from .helpers import actions, raw
from .webkit import TOKEN, read_until, sign_in, web_server


async def test_nothing_is_served_without_a_sign_in_and_a_wrong_token_is_refused(eng: Home) -> None:
    t = eng.new_tenant("web", {"mia": "member"})
    srv, link = await web_server(eng, user="mia", tenant=t)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.public_url}/", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"] == "/login"
            for path in ("/static/js/textual.js", "/ws", "/download/x"):
                async with http.get(f"{srv.public_url}{path}", allow_redirects=False) as r:
                    assert r.status == 401, path
            async with http.get(f"{srv.public_url}/login") as r:
                page = await r.text()
                assert r.status == 200 and 'name="token"' in page and r.headers["X-Frame-Options"] == "DENY"
            assert await sign_in(http, srv, "wrong") == (401, None)
            assert await sign_in(http, srv, "") == (401, None)
            # The form posted from another site is refused even with the right token (login CSRF).
            async with http.post(f"{srv.public_url}/login", data={"token": TOKEN}, allow_redirects=False,
                                 headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403 and COOKIE not in r.cookies
            # A forged cookie is nobody.
            forged = {"Cookie": f"{COOKIE}=forged"}
            async with http.get(f"{srv.public_url}/", allow_redirects=False, headers=forged) as r:
                assert r.status == 302
    finally:
        await srv.close()
    assert link.reasons("refused").count("wrong access token") == 2
    assert any("foreign Origin https://evil.example" in r for r in link.reasons("refused"))
    assert all(e["ok"] for e in link.events) and not link.reasons("login")


async def test_failed_sign_ins_are_rate_limited(eng: Home) -> None:
    t = eng.new_tenant("web", {"mia": "member"})
    srv, link = await web_server(eng, user="mia", tenant=t, auth_failures=2, auth_window=600)
    try:
        async with aiohttp.ClientSession() as http:
            assert (await sign_in(http, srv, "nope"))[0] == 401
            assert (await sign_in(http, srv, "nope"))[0] == 401
            assert await sign_in(http, srv) == (429, None)  # even the right token, until the window passes
    finally:
        await srv.close()
    assert any("too many failed sign-ins" in r for r in link.reasons("refused"))


async def test_a_signed_in_user_is_served_and_a_foreign_origin_starts_nothing(eng: Home) -> None:
    t = eng.new_tenant("web", {"mia": "member"})
    srv, link = await web_server(eng, user="mia", tenant=t)
    try:
        async with aiohttp.ClientSession() as http:
            status, cookie = await sign_in(http, srv)
            assert status == 302 and cookie
            jar = {"Cookie": f"{COOKIE}={cookie}"}
            async with http.get(f"{srv.public_url}/", headers=jar) as r:
                page = await r.text()
                assert r.status == 200 and f'data-session-websocket-url="ws://127.0.0.1:{srv.port}/ws"' in page
            ws_url = f"{srv.public_url}/ws?width=100&height=30"
            for origin in ("https://evil.example", f"http://localhost:{srv.port}", None):
                headers = {**jar, **({"Origin": origin} if origin else {})}
                with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                    await http.ws_connect(ws_url, headers=headers)
                assert e.value.status == 403, origin
            assert not srv.live and not actions(eng, t, "session.")  # nothing started, nothing minted
            async with http.ws_connect(ws_url, headers={**jar, "Origin": srv.origin}) as ws:
                frames = await read_until(ws, b"user mia")  # the 100-column status line of mia's TUI
                assert t.encode() in frames
                (proc,) = srv.live
                assert proc._process is not None and proc._process.returncode is None
                listed = raw(eng, "GET", "/v1/sessions")[1]
                assert [(r["user"], r["tenant"], r["purpose"]) for r in listed if r["tenant"] == t] == [
                    ("mia", t, "web")]
            for _ in range(300):
                if not srv.live and "disconnect" in link.reasons("logout"):
                    break
                await asyncio.sleep(0.1)
            assert not [r for r in raw(eng, "GET", "/v1/sessions")[1] if r["tenant"] == t]  # revoked
            async with http.get(f"{srv.public_url}/logout", headers=jar) as r:
                assert r.status == 200
            async with http.get(f"{srv.public_url}/", headers=jar, allow_redirects=False) as r:
                assert r.status == 302  # signed out: the cookie is nobody now
    finally:
        await srv.close()
    refused = link.reasons("refused")
    assert sum("websocket from foreign Origin" in r for r in refused) == 3, refused
    assert link.reasons("logout") == ["disconnect", "sign-out"]
    log = [(e["action"], e["outcome"]) for e in eng.audit(t) if e["action"].startswith(("session.", "remote."))]
    assert ("session.mint", "success") in log and ("session.use", "success") in log
    assert ("session.revoke", "success") in log and log.count(("remote.refused", "denied")) == 3


def test_token_sign_in_needs_a_user_and_some_way_to_sign_in(eng: Home) -> None:
    from core.errors import BadRequest
    from tui.serve.web import WebOptions, WebServer

    with pytest.raises(BadRequest, match="--user and --tenant"):
        WebServer(eng.paths, WebOptions(token=TOKEN))
    with pytest.raises(BadRequest, match="no way to sign in"):
        WebServer(eng.paths, WebOptions())
    with pytest.raises(BadRequest, match="give --public-url"):
        WebServer(eng.paths, WebOptions(token=TOKEN, user="mia", tenant="t", host="0.0.0.0"))
    srv = WebServer(eng.paths, WebOptions(token=TOKEN, user="mia", tenant="t", host="0.0.0.0",
                                          public_url="https://ws.example.test/"))
    assert srv.origin == "https://ws.example.test"


def test_origins_are_compared_as_browsers_send_them() -> None:
    from tui.serve.web import origin_of

    assert origin_of("https://Example.TEST:443/path") == "https://example.test"
    assert origin_of("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert origin_of("http://[::1]:80") == "http://[::1]"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "site.pem", folder / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


async def test_tls_when_given_a_certificate(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("web", {"mia": "member"})
    cert, key = _self_signed(tmp_path)
    srv, link = await web_server(eng, user="mia", tenant=t, cert=cert, key=key)
    try:
        assert srv.public_url.startswith("https://127.0.0.1:") and srv.origin == srv.public_url
        trust = ssl.create_default_context(cafile=str(cert))
        async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http,
                    http.post(f"{srv.public_url}/login", data={"token": TOKEN}, allow_redirects=False,
                              headers={"Origin": srv.origin}) as r):
            assert r.status == 302 and r.cookies[COOKIE]["secure"]
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(f"http://127.0.0.1:{srv.port}/login") as r:
                    await r.read()
    finally:
        await srv.close()
    from core.errors import BadRequest
    from tui.serve.web import WebOptions, WebServer

    bad = WebServer(eng.paths, WebOptions(token=TOKEN, user="mia", tenant=t, cert=tmp_path / "none.pem"))
    with pytest.raises(BadRequest, match="cannot load the TLS certificate"):
        bad.ssl_context()


async def test_an_idle_browser_session_is_closed(eng: Home) -> None:
    t = eng.new_tenant("web", {"mia": "member"})
    srv, link = await web_server(eng, user="mia", tenant=t, idle_timeout=3)
    try:
        async with aiohttp.ClientSession() as http:
            _status, cookie = await sign_in(http, srv)
            headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": srv.origin}
            async with http.ws_connect(f"{srv.public_url}/ws?width=100&height=30", headers=headers) as ws:
                await read_until(ws, b"user mia")
                async for _msg in ws:  # frames until the server closes the socket for idleness
                    pass
                assert ws.closed
        for _ in range(300):
            if "idle" in link.reasons("logout"):
                break
            await asyncio.sleep(0.1)
    finally:
        await srv.close()
    assert link.reasons("logout") == ["idle"]
    assert [e["details"]["reason"] for e in actions(eng, t, "session.revoke")] == ["idle"]
