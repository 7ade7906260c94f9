"""The SAML service provider of ``musubi serve web`` against a fake identity provider that signs with xmlsec.

A good response signs its user in; tampered, unsigned, wrongly signed, replayed, unsolicited,
wrong-audience, wrong-recipient, expired, not-yet-valid and signature-wrapped ones do not.
"""

from __future__ import annotations

import base64
import socket
import zlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from lxml import etree

from core.errors import MusubiError
from tests.engine.helpers import Home
from tui.serve.keys import KeysFileError
from tui.serve.saml import SamlRefused, SamlSP, parse_users
from tui.serve.signin import COOKIE

from .helpers import actions
from .saml_idp import SP, FakeIdP, b64, make_keypair, sp_settings
from .webkit import read_until, web_server

ACS = "https://musubi.example.test/saml/acs"
USERS = {"mia@example.com": ("mia", "acme")}


@pytest.fixture(scope="module")
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def sp(idp: FakeIdP) -> SamlSP:
    return SamlSP.from_settings(sp_settings(ACS, idp.keys), USERS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pending(sp: SamlSP) -> str:
    """Send an AuthnRequest; its ID (what the answer must be InResponseTo)."""
    url = sp.begin()
    xml = zlib.decompress(base64.b64decode(parse_qs(urlsplit(url).query)["SAMLRequest"][0]), -15)
    rid = etree.fromstring(xml).get("ID")
    assert rid in sp.outstanding and urlsplit(url).netloc == "idp.example.test"
    return str(rid)


def refused(sp: SamlSP, response: str, says: str) -> None:
    with pytest.raises(SamlRefused) as e:
        sp.finish(response)
    assert says in e.value.message, e.value.message


def test_a_signed_response_signs_its_user_in(sp: SamlSP, idp: FakeIdP) -> None:
    rid = pending(sp)
    assert sp.finish(idp.signed_response("mia@example.com", ACS, rid)) == ("mia", "acme", "mia@example.com")


def test_a_response_is_used_once_and_an_assertion_id_never_twice(sp: SamlSP, idp: FakeIdP) -> None:
    rid = pending(sp)
    good = idp.signed_response("mia@example.com", ACS, rid, assertion_id="_replayme")
    sp.finish(good)
    refused(sp, good, "unsolicited")  # the same post again: its request was answered already
    rid2 = pending(sp)  # a fresh request, answered with an assertion id already used
    refused(sp, idp.signed_response("mia@example.com", ACS, rid2, assertion_id="_replayme"), "replayed assertion")


def test_unsolicited_and_garbage_responses_are_refused(sp: SamlSP, idp: FakeIdP) -> None:
    pending(sp)
    refused(sp, idp.signed_response("mia@example.com", ACS, "_not_ours"), "unsolicited")
    refused(sp, "bm90IHhtbA==", "not a SAML response")
    refused(sp, "%%%", "not a SAML response")


def test_tampered_unsigned_and_foreign_signed_responses_are_refused(sp: SamlSP, idp: FakeIdP) -> None:
    rid = pending(sp)
    signed = idp.sign(idp.assertion("mia@example.com", ACS, rid))
    tampered = signed.replace("mia@example.com", "boss@example.com")
    sp.users["boss@example.com"] = ("boss", "acme")
    refused(sp, b64(idp.response(tampered, ACS, rid)), "Signature validation failed")
    rid = pending(sp)
    refused(sp, b64(idp.response(idp.assertion("mia@example.com", ACS, rid), ACS, rid)), "not signed")
    rid = pending(sp)  # the Response signed, the Assertion in it not: assertions must be signed
    whole = idp.sign(idp.response(idp.assertion("mia@example.com", ACS, rid), ACS, rid))
    refused(sp, b64(whole), "not signed")
    rid = pending(sp)
    other = make_keypair("someone else")
    forged = idp.sign(idp.assertion("mia@example.com", ACS, rid), other)
    refused(sp, b64(idp.response(forged, ACS, rid)), "Signature validation failed")


@pytest.mark.parametrize(("kw", "says"), [
    ({"audience": "https://other-sp.example.test/metadata"}, "audience"),
    ({"recipient": "https://evil.example.test/saml/acs"}, "valid subjectconfirmation was not found"),
    ({"shift": timedelta(minutes=-20)}, "expired"),
    ({"shift": timedelta(minutes=20)}, "not yet valid"),
])
def test_audience_recipient_and_time_conditions_are_checked(sp: SamlSP, idp: FakeIdP, kw: dict, says: str) -> None:
    rid = pending(sp)
    with pytest.raises(SamlRefused) as e:
        sp.finish(idp.signed_response("mia@example.com", ACS, rid, **kw))
    assert says in e.value.message.lower(), e.value.message


def test_signature_wrapping_is_refused(sp: SamlSP, idp: FakeIdP) -> None:
    sp.users["boss@example.com"] = ("boss", "acme")
    rid = pending(sp)
    genuine = idp.sign(idp.assertion("mia@example.com", ACS, rid))
    refused(sp, idp.wrapped(genuine, "boss@example.com", ACS, rid), "must contain 1 assertion")
    rid = pending(sp)
    genuine = idp.sign(idp.assertion("mia@example.com", ACS, rid))
    refused(sp, idp.wrapped_beside(genuine, "boss@example.com", ACS, rid), "must contain 1 assertion")


def test_an_unlisted_name_id_is_refused(sp: SamlSP, idp: FakeIdP) -> None:
    rid = pending(sp)
    refused(sp, idp.signed_response("stranger@example.com", ACS, rid), "not in the SAML users file")


def test_weakened_settings_are_forced_back(idp: FakeIdP) -> None:
    weak = SamlSP.from_settings(sp_settings(ACS, idp.keys, wantAssertionsSigned=False), USERS)
    assert weak.settings["security"]["wantAssertionsSigned"] is True and weak.settings["strict"] is True
    rid = pending(weak)
    refused(weak, b64(idp.response(idp.assertion("mia@example.com", ACS, rid), ACS, rid)), "not signed")


def test_the_users_file_is_strict() -> None:
    assert parse_users("# x\nmusubi:user=mia,tenant=acme mia@example.com\n") == USERS
    for bad in ("mia@example.com", "musubi:user=mia mia@example.com", "musubi:user=mia,tenant=acme",
                "musubi:user=mia,tenant=acme,role=owner mia@example.com", "musubi:user=mia,tenant=A! x"):
        with pytest.raises(KeysFileError):
            parse_users(bad)
    with pytest.raises(KeysFileError, match="listed twice"):
        parse_users("musubi:user=a,tenant=t x\nmusubi:user=b,tenant=t x\n")


async def test_a_saml_sign_in_through_the_web_server_serves_its_user(eng: Home, idp: FakeIdP) -> None:
    t = eng.new_tenant("saml", {"mia": "member"})
    port = free_port()
    acs = f"http://127.0.0.1:{port}/saml/acs"
    sp = SamlSP.from_settings(sp_settings(acs, idp.keys), {"mia@example.com": ("mia", t)})
    srv, link = await web_server(eng, token=None, saml=sp, port=port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.public_url}/saml/login", allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"].startswith("https://idp.example.test/sso?")
            rid = next(iter(sp.outstanding))
            bad = idp.signed_response("mia@example.com", acs, rid, audience="https://x.test")
            async with http.post(acs, data={"SAMLResponse": bad}, allow_redirects=False) as r:
                assert r.status == 403 and COOKIE not in r.cookies
            async with http.get(f"{srv.public_url}/saml/login", allow_redirects=False):
                pass
            rid = next(k for k in sp.outstanding)
            good = idp.signed_response("mia@example.com", acs, rid)
            async with http.post(acs, data={"SAMLResponse": good}, allow_redirects=False) as r:
                assert r.status == 200 and "url=/" in await r.text()  # moves on from our own origin
                assert r.cookies[COOKIE].value
                cookie = r.cookies[COOKIE]
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
                jar = {"Cookie": f"{COOKIE}={cookie.value}"}
            async with http.ws_connect(f"{srv.public_url}/ws?width=100&height=30",
                                       headers={**jar, "Origin": srv.origin}) as ws:
                await read_until(ws, b"user mia")
            async with http.get(f"{srv.public_url}/saml/metadata") as r:
                assert r.status == 200 and SP in await r.text()
    finally:
        await srv.close()
    assert any(r.startswith("SAML: invalid SAML response") for r in link.reasons("refused")), link.events
    assert "sign-in (saml: mia@example.com)" in link.reasons("login")
    assert actions(eng, t, "session.mint")[-1]["details"]["client"].endswith("via saml")


def test_an_acs_url_that_is_not_the_servers_stops_the_start(eng: Home, idp: FakeIdP) -> None:
    from tui.serve.web import WebOptions, WebServer

    sp = SamlSP.from_settings(sp_settings("https://elsewhere.test/saml/acs", idp.keys), USERS)
    srv = WebServer(eng.paths, WebOptions(port=8080, saml=sp))
    with pytest.raises(MusubiError, match="set sp.assertionConsumerService.url"):
        import asyncio

        asyncio.run(srv._make_app())


def test_pending_requests_are_bounded(sp: SamlSP, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.serve.saml as saml

    monkeypatch.setattr(saml, "MAX_PENDING", 3)
    first = pending(sp)
    for _ in range(3):
        pending(sp)
    assert len(sp.outstanding) == 3 and first not in sp.outstanding  # the oldest made room


def test_group_and_role_attributes_are_read_from_the_signed_assertion(idp: FakeIdP) -> None:
    raw = {**sp_settings(ACS, idp.keys), "musubi": {"name": "corp-saml", "groups_attribute": "memberOf"}}
    sp = SamlSP.from_settings(raw, USERS)
    assert (sp.name, sp.groups_attribute, sp.roles_attribute) == ("corp-saml", "memberOf", "roles")
    got = sp.sign_in(idp.signed_response("mia@example.com", ACS, pending(sp),
                                         attributes={"memberOf": ["eng", "ops"], "roles": ["Auditor"]}))
    assert (got.user, got.tenant, got.groups, got.roles) == ("mia", "acme", ("eng", "ops"), ("Auditor",))
    for bad in ({"name": "has space"}, {"colour": "x"}, {"name": ""}, ["x"]):
        with pytest.raises(KeysFileError, match="musubi"):
            SamlSP.from_settings({**sp_settings(ACS, idp.keys), "musubi": bad}, USERS)


async def test_a_saml_sign_in_maps_its_groups_through_the_sso_rules(eng: Home, idp: FakeIdP) -> None:
    t = eng.new_tenant("samlmap")
    eng.client(t).put("/v1/sso/rules", {"value": "eng", "role": "member", "provider": "corp-saml"})
    port = free_port()
    acs = f"http://127.0.0.1:{port}/saml/acs"
    sp = SamlSP.from_settings({**sp_settings(acs, idp.keys), "musubi": {"name": "corp-saml"}},
                              {"sam@example.com": ("sam", t)})
    srv, _link = await web_server(eng, token=None, saml=sp, port=port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.public_url}/saml/login", allow_redirects=False):
                pass
            good = idp.signed_response("sam@example.com", acs, next(iter(sp.outstanding)),
                                       attributes={"groups": ["eng"]})
            async with http.post(acs, data={"SAMLResponse": good}, allow_redirects=False) as r:
                jar = {"Cookie": f"{COOKIE}={r.cookies[COOKIE].value}"}
            async with http.ws_connect(f"{srv.public_url}/ws?width=100&height=30",
                                       headers={**jar, "Origin": srv.origin}) as ws:
                await read_until(ws, b"user sam")  # sam had no role: the rule granted it at this sign-in
    finally:
        await srv.close()
    minted = actions(eng, t, "session.mint")[-1]["details"]
    assert minted["auth"] == "saml:corp-saml" and minted["mapped"] == {t: "grant"}
    mapped = actions(eng, t, "sso.map")
    assert mapped[-1]["actor"] == "sso:corp-saml" and mapped[-1]["details"]["subject"] == "sam@example.com"
    assert next(m for m in eng.client(t).get("/v1/members") if m["user"] == "sam")["added_by"] == "sso:corp-saml"
