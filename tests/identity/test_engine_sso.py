"""The engine's side of SSO on a real engine: it validates the ID token itself, binds the session to
the socket peer's OS user, applies and audits the mapping rules, enforces "SSO required"."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.api.sso import SsoSignedIn, SsoSignedOut
from core.client import _UnixHTTPConnection

from ..engine.helpers import Home, unique
from ..engine.other_user import OTHER, need_root, open_to_others, raw_as_other
from ..engine.test_api_models import _exactly
from .fake_idp import CLIENT_ID, FakeIdp


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeIdp]:
    with FakeIdp(tmp_path_factory.mktemp("idp"), overage_after=3) as fake:
        yield fake


@pytest.fixture(scope="module")
def eng(idp: FakeIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    conf = tmp_path_factory.mktemp("conf")
    (conf / "config.toml").write_text(
        idp.config_toml("corp") + "\n" + idp.config_toml("entra1", kind="entra").split("\n", 3)[3])
    old = os.environ.get("MUSUBI_CONFIG_DIR")
    os.environ["MUSUBI_CONFIG_DIR"] = str(conf)  # the engine (a child) reads its config there
    h = Home()
    try:
        h.start()
        yield h
    finally:
        h.cleanup()
        if old is None:
            os.environ.pop("MUSUBI_CONFIG_DIR", None)
        else:
            os.environ["MUSUBI_CONFIG_DIR"] = old


def req(h: Home, method: str, path: str, body: Any = None, *, session: str | None = None,
        tenant: str | None = None) -> tuple[int, Any]:
    headers = {"X-Musubi-Cwd": "/"}
    if session:
        headers["X-Musubi-Sso-Session"] = session
    if tenant:
        headers["X-Musubi-Tenant"] = tenant
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn = _UnixHTTPConnection(str(h.paths.socket), 30)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    return resp.status, json.loads(text) if text else None


def as_other(h: Home, method: str, path: str, body: Any = None, *, session: str | None = None,
             tenant: str | None = None) -> tuple[int, Any]:
    """One request from the OS user ``nobody`` (fork + setuid; root only), with a session header."""
    headers = {"X-Musubi-Sso-Session": session} if session else None
    return raw_as_other(h, method, path, body, tenant=tenant, headers=headers)


def sign_in(h: Home, idp: FakeIdp, token: str | None = None, provider: str = "corp", **extra: Any) -> tuple[int, Any]:
    return req(h, "POST", "/v1/sso/session", {"provider": provider, "id_token": token or idp.mint(), **extra})


def other_signs_in(h: Home, idp: FakeIdp, token: str | None = None, provider: str = "corp",
                   **extra: Any) -> tuple[int, Any]:
    """The OS user ``nobody`` signs in (so the test's own user stays the tenants' owner and reads them)."""
    need_root()
    open_to_others(h)
    return as_other(h, "POST", "/v1/sso/session", {"provider": provider, "id_token": token or idp.mint(), **extra})


def system_log(h: Home, action: str) -> list[dict[str, Any]]:
    rows = h.client().get("/v1/audit", {"system": "true", "action": action, "limit": 1000, "ascending": "1"})
    return list(rows)


def test_providers_are_listed_without_secrets(eng: Home, idp: FakeIdp) -> None:
    status, rows = req(eng, "GET", "/v1/sso/providers")
    assert status == 200
    assert {r["name"]: r["kind"] for r in rows} == {"corp": "oidc", "entra1": "entra"}
    assert all(r["client_id"] == CLIENT_ID for r in rows) and rows[0]["default"] is True


def test_sign_in_binds_a_session_to_the_os_user(eng: Home, idp: FakeIdp) -> None:
    status, out = sign_in(eng, idp)
    assert status == 201, out
    _exactly(out, SsoSignedIn)  # the answer has exactly the response model's shape
    sid = out["session"]
    assert out["subject"] == "sub-alice" and out["os_user"] == pwd.getpwuid(os.getuid()).pw_name
    status, shown = req(eng, "GET", "/v1/sso/session", session=sid)
    assert status == 200 and shown["signed_in"] and shown["email"] == "alice@example.com"
    assert "session" not in shown
    assert req(eng, "GET", "/v1/sso/session")[1]["signed_in"] is False
    assert req(eng, "GET", "/v1/sso/session", session=sid + "x")[1]["signed_in"] is False
    ev = system_log(eng, "sso.signin")[-1]
    assert ev["outcome"] == "success" and ev["details"]["subject"] == "sub-alice"


def test_a_session_id_is_worthless_to_another_os_user(eng: Home, idp: FakeIdp) -> None:
    need_root()
    open_to_others(eng)
    sid = sign_in(eng, idp)[1]["session"]
    status, shown = as_other(eng, "GET", "/v1/sso/session", session=sid)
    assert status == 200 and shown["signed_in"] is False and shown["os_user"] == OTHER
    assert req(eng, "GET", "/v1/sso/session", session=sid)[1]["signed_in"] is True


def test_refused_tokens_are_audited_and_never_echoed(eng: Home, idp: FakeIdp) -> None:
    bad = idp.mint(idp.claims(aud="another-app"))
    status, body = sign_in(eng, idp, bad)
    assert status == 403 and body["error"]["code"] == "sso_token_refused", body
    assert bad not in json.dumps(body)
    ev = system_log(eng, "sso.signin")[-1]
    assert ev["outcome"] == "denied" and "not issued for this application" in ev["details"]["reason"]
    # a token used once cannot open a second session
    good = idp.mint()
    assert sign_in(eng, idp, good)[0] == 201
    status, body = sign_in(eng, idp, good)
    assert status == 403 and body["error"]["code"] == "sso_token_replayed"
    # unknown provider, missing token: usage errors naming the field
    status, body = sign_in(eng, idp, provider="nope")
    assert status == 400 and "corp" in body["error"]["message"]
    status, body = req(eng, "POST", "/v1/sso/session", {"provider": "corp"})
    assert status == 400 and body["error"]["field"] == "id_token"
    # neither the engine log nor the audit log holds a token
    log = (eng.paths.home / "logs" / "engine.log").read_text(errors="replace")
    assert bad not in log and good not in log
    assert good not in json.dumps(system_log(eng, "sso.signin"))


def test_mapping_is_applied_at_each_sign_in_and_audited(eng: Home, idp: FakeIdp) -> None:
    me = OTHER
    t = eng.new_tenant("ssomap")
    c = eng.client(t)
    c.put("/v1/sso/rules", {"value": "grp-dev", "role": "member"})
    c.put("/v1/sso/rules", {"value": "grp-ops", "role": "admin"})
    c.put("/v1/sso/rules", {"value": "Reader", "claim": "roles", "role": "viewer"})
    assert [r["value"] for r in c.get("/v1/sso/rules")] == ["grp-dev", "grp-ops", "Reader"]

    def binding() -> dict[str, Any] | None:
        return next((m for m in c.get("/v1/members") if m["user"] == me), None)

    idp.user.groups = ["grp-dev"]
    out = other_signs_in(eng, idp)[1]
    assert {x["tenant"]: x["action"] for x in out["tenants"]}[t] == "grant"
    b = binding()
    assert b and b["role"] == "member" and b["added_by"] == "sso:corp"  # member beats viewer (more permissions)
    idp.user.groups = ["grp-dev", "grp-ops"]
    other_signs_in(eng, idp)
    assert (b := binding()) and b["role"] == "admin"
    idp.user.groups, idp.user.roles = [], []
    other_signs_in(eng, idp)
    assert binding() is None
    evs = [e for e in eng.audit(t) if e["action"] == "sso.map"]
    assert [e["details"]["action"] for e in evs] == ["grant", "update", "revoke"]
    assert evs[0]["details"]["matched"] == ["groups:grp-dev"]  # the winning role's rules only
    assert all(e["actor"] == "sso:corp" for e in evs)
    idp.user.groups, idp.user.roles = ["grp-dev"], ["Reader"]


def test_a_binding_made_by_hand_is_kept(eng: Home, idp: FakeIdp) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    t = eng.new_tenant("ssoman")  # the test's user is its owner, by hand
    eng.client(t).put("/v1/sso/rules", {"value": "grp-dev", "role": "viewer"})
    idp.user.groups = ["grp-dev"]
    out = sign_in(eng, idp)[1]
    assert {x["tenant"]: x["action"] for x in out["tenants"]}[t] == "keep_manual"
    assert [m["role"] for m in eng.client(t).get("/v1/members") if m["user"] == me] == ["owner"]


def test_rules_are_checked_and_need_members_manage(eng: Home) -> None:
    t = eng.new_tenant("ssorules", {"vic": "viewer", "adm": "admin"})
    status, body = eng.raw("PUT", "/v1/sso/rules", {"value": "g", "role": "member"}, tenant=t, as_user="vic")
    assert status == 403 and body["error"]["permission"] == "members.manage"
    status, body = eng.raw("PUT", "/v1/sso/rules", {"value": "g", "role": "owner"}, tenant=t, as_user="adm")
    assert status == 403 and "lack" in body["error"]["message"]  # no rule above your own role
    status, body = eng.raw("PUT", "/v1/sso/rules", {"value": "g", "role": "nosuch"}, tenant=t)
    assert status == 404
    status, body = eng.raw("PUT", "/v1/sso/rules", {"value": "g", "role": "member", "claim": "email"}, tenant=t)
    assert status == 400 and body["error"]["field"] == "claim"
    status, body = eng.raw("DELETE", "/v1/sso/rules?value=g", tenant=t)
    assert status == 404 and "musubi sso list" in body["error"]["message"]
    assert eng.client(t).put("/v1/sso/rules", {"value": "g", "role": "member"})["action"] == "added"
    assert eng.client(t).put("/v1/sso/rules", {"value": "g", "role": "viewer"})["action"] == "updated"
    assert eng.client(t).delete("/v1/sso/rules", {"value": "g"})["action"] == "removed"
    rules = [e for e in eng.audit(t) if e["action"].startswith("sso.rule")]
    assert [(e["action"], e["outcome"]) for e in rules] == [
        ("sso.rule.set", "denied"), ("sso.rule.set", "denied"),
        ("sso.rule.set", "success"), ("sso.rule.set", "success"), ("sso.rule.remove", "success")]
    assert rules[3]["details"]["previous_role"] == "member"


def test_entra_group_overage_is_resolved_at_graph(eng: Home, idp: FakeIdp) -> None:
    me = OTHER
    t = eng.new_tenant("ssoover")
    eng.client(t).put("/v1/sso/rules", {"value": "grp-many-4", "role": "member", "provider": "entra1"})
    idp.user.groups = [f"grp-many-{i}" for i in range(6)]  # more than overage_after: no groups claim
    try:
        claims = idp.claims()
        assert "groups" not in claims and "_claim_names" in claims
        status, body = other_signs_in(eng, idp, idp.mint(claims), provider="entra1")
        assert status == 403 and "too many groups" in body["error"]["message"]
        access = "at-test-" + unique("x")
        idp.access[access] = idp.user.sub
        status, out = other_signs_in(eng, idp, idp.mint(idp.claims()), provider="entra1", access_token=access)
        assert status == 201, out
        assert out["groups"] == 6 and {x["tenant"]: x["action"] for x in out["tenants"]}[t] == "grant"
        assert [m["role"] for m in eng.client(t).get("/v1/members") if m["user"] == me] == ["member"]
        # Graph refuses a token that is not the user's: the sign-in is refused, not granted
        status, body = other_signs_in(eng, idp, idp.mint(idp.claims()), provider="entra1", access_token="at-forged")
        assert status == 403 and "Graph refused" in body["error"]["message"]
        # the generic provider does not resolve overage
        status, body = other_signs_in(eng, idp, idp.mint(idp.claims()), provider="corp")
        assert status == 403 and "only Entra ID" in body["error"]["message"]
    finally:
        idp.user.groups = ["grp-dev"]


def test_sso_required_refuses_os_only_callers_except_break_glass(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("ssoreq")
    c = eng.client(t)
    status, body = eng.raw("PUT", "/v1/sso/policy", {"required": True}, tenant=t)
    assert status == 400 and body["error"]["field"] == "break_glass"  # would lock the owner out
    status, body = eng.raw("PUT", "/v1/sso/policy", {"required": True, "break_glass": "ghost"}, tenant=t)
    assert status == 400 and "not an owner" in body["error"]["message"]
    c.post("/v1/members", {"user": OTHER, "role": "owner"})
    pol = c.put("/v1/sso/policy", {"required": True, "break_glass": OTHER})
    assert pol["sso_required"] is True and pol["break_glass"] == OTHER
    status, body = req(eng, "GET", "/v1/members", tenant=t)
    assert status == 403 and body["error"]["code"] == "sso_required" and "musubi login" in body["error"]["message"]
    sid = sign_in(eng, idp)[1]["session"]
    status, rows = req(eng, "GET", "/v1/members", tenant=t, session=sid)
    assert status == 200 and rows
    # every refusal is audited in the tenant
    refusals = [e for e in req(eng, "GET", "/v1/audit?limit=1000", tenant=t, session=sid)[1]
                if e["outcome"] == "denied" and e["details"].get("code") == "sso_required"]
    assert refusals and refusals[-1]["action"] == "tenant.access"
    # --as the break-glass owner lends nothing
    status, body = eng.raw("GET", "/v1/members", tenant=t, as_user=OTHER)
    assert status == 403
    if os.getuid() == 0:
        open_to_others(eng)
        status, rows = as_other(eng, "GET", "/v1/members", tenant=t)
        assert status == 200  # the break-glass owner, as their own OS user
    # whoami and the session route stay open, so a refused user can see why and sign in
    assert req(eng, "GET", "/v1/whoami", tenant=t)[0] == 200
    status, _ = req(eng, "PUT", "/v1/sso/policy", {"required": False}, tenant=t, session=sid)
    assert status == 200
    assert req(eng, "GET", "/v1/members", tenant=t)[0] == 200


def test_logout_ends_the_session(eng: Home, idp: FakeIdp) -> None:
    sid = sign_in(eng, idp)[1]["session"]
    status, out = req(eng, "DELETE", "/v1/sso/session", session=sid)
    assert status == 200 and out["signed_out"] is True
    _exactly(out, SsoSignedOut)
    assert req(eng, "GET", "/v1/sso/session", session=sid)[1]["signed_in"] is False
    status, body = req(eng, "DELETE", "/v1/sso/session", session=sid)
    assert status == 404 and body["error"]["code"] == "not_signed_in"
    assert system_log(eng, "sso.signout")[-1]["details"]["subject"] == "sub-alice"


def test_rules_and_policy_survive_a_restart(eng: Home, idp: FakeIdp, tmp_path: Path) -> None:
    t = eng.new_tenant("ssokeep")
    eng.client(t).put("/v1/sso/rules", {"value": "grp-keep", "role": "viewer"})
    eng.client(t).put("/v1/sso/policy", {"required": False, "break_glass": None})
    sid = sign_in(eng, idp)[1]["session"]
    eng.stop()
    eng.start()
    assert [r["value"] for r in eng.client(t).get("/v1/sso/rules")] == ["grp-keep"]
    assert eng.client(t).get("/v1/sso/policy")["sso_required"] is False
    # sessions live in the engine's memory: a restart signs everyone out
    assert req(eng, "GET", "/v1/sso/session", session=sid)[1]["signed_in"] is False
