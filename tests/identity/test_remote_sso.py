"""SSO and remote sessions as one feature: how a minted session's user was authenticated decides
whether it counts for "SSO required"; SAML/OIDC sign-ins go through the mapping rules; the two
session headers never mix; the routes that check for themselves gate too (docs/identity.md)."""

from __future__ import annotations

from typing import Any

from core.engine.access import engine_os_user

from ..engine.helpers import Home
from .fake_idp import FakeIdp
from .test_engine_sso import eng, idp, req, sign_in

__all__ = ["eng", "idp"]


def mint(h: Home, user: str, tenant: str, **extra: Any) -> tuple[int, Any]:
    body = {"user": user, "tenant": tenant, "purpose": "web", **extra}
    return h.raw("POST", "/v1/sessions", body)


def with_token(h: Home, method: str, path: str, token: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    return h.raw(method, path, body, headers={"X-Musubi-Session": token, **headers})


def audit(h: Home, tenant: str, sid: str) -> list[dict[str, Any]]:
    """The tenant's audit log, read with the SSO session ``sid`` (the tenant may require SSO)."""
    status, rows = req(h, "GET", "/v1/audit?limit=1000&ascending=1", tenant=tenant, session=sid)
    assert status == 200, rows
    return list(rows)


def denied(h: Home, tenant: str, action: str, sid: str) -> list[dict[str, Any]]:
    return [e for e in audit(h, tenant, sid) if e["action"] == action and e["outcome"] == "denied"]


def required(h: Home, idp: FakeIdp, tenant: str, break_glass: str | None = None) -> str:
    """Turn "SSO required" on in ``tenant`` (signed in, so no break-glass is needed); the session id."""
    sid = sign_in(h, idp)[1]["session"]
    status, out = req(h, "PUT", "/v1/sso/policy", {"required": True, "break_glass": break_glass}, tenant=tenant,
                      session=sid)
    assert status == 200, out
    return str(sid)


def test_a_session_records_how_its_user_was_authenticated(eng: Home) -> None:
    t = eng.new_tenant("auth", {"mia": "member"})
    assert mint(eng, "mia", t)[1]["auth"] == "web-token"
    assert mint(eng, "mia", t, purpose="ssh")[1]["auth"] == "ssh-key"
    assert mint(eng, "mia", t, auth="saml:corp-saml")[1]["auth"] == "saml:corp-saml"
    assert mint(eng, "mia", t, auth="oidc:corp")[1]["auth"] == "oidc:corp"
    ev = [e for e in eng.audit(t) if e["action"] == "session.mint"][-1]
    assert ev["details"]["auth"] == "oidc:corp"
    for bad in ({"auth": "password"}, {"auth": "saml:"}, {"auth": "oidc:no spaces"},
                {"purpose": "ssh", "auth": "saml:x"}, {"auth": "ssh-key"},
                {"auth": "web-token", "groups": ["g"]}, {"auth": "saml:x", "groups": "g"}):
        status, out = mint(eng, "mia", t, **bad)
        assert status == 400 and out["error"]["field"] in ("auth", "groups"), (bad, out)


def test_sso_required_counts_saml_and_oidc_sessions_not_keys_or_tokens(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("rsso", {"mia": "member", "bo": "owner"})
    early = mint(eng, "mia", t, purpose="ssh")[1]["token"]  # minted before the policy
    sid = required(eng, idp, t, break_glass="bo")
    for auth in ("ssh-key", "web-token"):
        status, out = mint(eng, "mia", t, purpose="ssh" if auth == "ssh-key" else "web", auth=auth)
        assert status == 403 and out["error"]["code"] == "sso_required", out
        assert auth in out["error"]["message"] and "--saml" in out["error"]["message"]
    assert len(denied(eng, t, "session.mint", sid)) == 2  # each refusal audited, in the tenant
    # the session minted before the policy is refused at its next request (audited), whoami stays open
    status, out = with_token(eng, "GET", "/v1/members", early)
    assert status == 403 and out["error"]["code"] == "sso_required", out
    assert [e["details"]["code"] for e in denied(eng, t, "tenant.access", sid)][-1] == "sso_required"
    assert with_token(eng, "GET", "/v1/whoami", early)[0] == 200
    # a SAML or OIDC sign-in is an SSO sign-in
    for auth in ("saml:corp-saml", "oidc:corp"):
        tok = mint(eng, "mia", t, auth=auth)[1]["token"]
        status, rows = with_token(eng, "GET", "/v1/members", tok)
        assert status == 200 and rows, rows
    # the break-glass owner's key session still gets in (the IdP may be down)
    tok = mint(eng, "bo", t, purpose="ssh")[1]["token"]
    assert with_token(eng, "GET", "/v1/members", tok)[0] == 200
    assert tok not in str(audit(eng, t, sid))


def test_a_request_carrying_both_headers_is_the_remote_sessions_user_only(eng: Home, idp: FakeIdp) -> None:
    """The serve process's OS user may be signed in itself: its SSO session is never lent to a remote session."""
    t = eng.new_tenant("both", {"mia": "member"})
    sid = required(eng, idp, t)  # signed in as the engine's OS user, the tenant's owner
    tok = mint(eng, "mia", t, purpose="web", auth="web-token")
    assert tok[0] == 403  # refused at mint: a web token is not SSO
    status, _ = req(eng, "PUT", "/v1/sso/policy", {"required": False}, tenant=t, session=sid)
    assert status == 200
    key = mint(eng, "mia", t, purpose="ssh")[1]["token"]
    required(eng, idp, t)
    status, out = with_token(eng, "GET", "/v1/members", key, **{"X-Musubi-Sso-Session": sid})
    assert status == 403 and out["error"]["code"] == "sso_required", out  # the owner's SSO session lends nothing
    status, who = with_token(eng, "GET", "/v1/whoami", key, **{"X-Musubi-Sso-Session": sid})
    assert status == 200 and who["user"] == "mia" and who["real_user"] == "mia"
    status, me = req(eng, "GET", "/v1/sso/session", session=sid)
    assert status == 200 and me["signed_in"] and me["os_user"] == engine_os_user()
    # the SSO header alone is still the OS user's own session
    status, rows = req(eng, "GET", "/v1/members", tenant=t, session=sid)
    assert status == 200 and {r["user"] for r in rows} >= {"mia"}
    # and a remote-session token in the SSO header is no SSO session
    status, out = req(eng, "GET", "/v1/members", tenant=t, session=key)
    assert status == 403 and out["error"]["code"] == "sso_required"


def test_saml_groups_map_to_roles_through_the_sso_rules(eng: Home) -> None:
    t = eng.new_tenant("smap")
    c = eng.client(t)
    c.put("/v1/sso/rules", {"value": "eng", "role": "member", "provider": "corp-saml"})
    c.put("/v1/sso/rules", {"value": "Auditor", "claim": "roles", "role": "auditor", "provider": "corp-saml"})
    c.put("/v1/sso/rules", {"value": "eng", "role": "admin", "provider": "okta"})  # another IdP's rule

    def role() -> str | None:
        return next((m["role"] for m in c.get("/v1/members") if m["user"] == "sam"), None)

    status, out = mint(eng, "sam", t, auth="saml:corp-saml", groups=["eng", "x"], subject="sam@example.com")
    assert status == 201 and role() == "member", out
    status, out = mint(eng, "sam", t, auth="saml:corp-saml", roles=["Auditor"], subject="sam@example.com")
    assert status == 201 and role() == "auditor", out  # no longer in eng: the rule's role changes
    status, out = mint(eng, "sam", t, auth="saml:corp-saml", subject="sam@example.com")
    assert status == 403 and "has no role there" in out["error"]["message"] and role() is None  # default deny
    evs = [e for e in eng.audit(t) if e["action"] == "sso.map"]
    assert [e["details"]["action"] for e in evs] == ["grant", "update", "revoke"]
    assert all(e["actor"] == "sso:corp-saml" and e["details"]["subject"] == "sam@example.com" for e in evs)
    # a web-token or ssh-key session never goes through the rules
    c.post("/v1/members", {"user": "kit", "role": "viewer"})
    assert mint(eng, "kit", t)[0] == 201
    assert next(m for m in c.get("/v1/members") if m["user"] == "kit")["role"] == "viewer"


def test_tenant_show_and_system_acts_are_gated(eng: Home, idp: FakeIdp) -> None:
    t = eng.new_tenant("tshow", {"mia": "member"})
    sid = required(eng, idp, t)
    status, out = req(eng, "GET", f"/v1/tenants/{t}", tenant=t)
    assert status == 403 and out["error"]["code"] == "sso_required", out
    assert req(eng, "GET", f"/v1/tenants/{t}", tenant=t, session=sid)[0] == 200
    key = mint(eng, "mia", t, purpose="ssh")
    assert key[0] == 403  # and a key session cannot even be minted for it
    saml = mint(eng, "mia", t, auth="saml:corp-saml")[1]["token"]
    assert with_token(eng, "GET", f"/v1/tenants/{t}", saml)[0] == 200
    # the system tenant's policy governs system acts (create, suspend, resume) and a system owner's reads
    status, _ = req(eng, "PUT", "/v1/sso/policy", {"required": True}, tenant="default", session=sid)
    assert status == 200
    try:
        status, out = req(eng, "POST", "/v1/tenants", {"name": "nosso1"})
        assert status == 403 and out["error"]["code"] == "sso_required", out
        status, out = req(eng, "POST", f"/v1/tenants/{t}/suspend", {})
        assert status == 403 and out["error"]["code"] == "sso_required", out
        assert req(eng, "GET", "/v1/tenants")[0] == 200  # the list stays open (names of your own tenants)
        assert req(eng, "POST", "/v1/tenants", {"name": "withsso1"}, session=sid)[0] == 201
    finally:
        req(eng, "PUT", "/v1/sso/policy", {"required": False}, tenant="default", session=sid)
    assert req(eng, "POST", "/v1/tenants", {"name": "nosso1"})[0] == 201


def test_an_engine_restart_signs_everyone_out_by_design(eng: Home, idp: FakeIdp) -> None:
    """Sessions are never stored (docs/identity.md#sessions): after a restart both kinds are refused with the fix."""
    t = eng.new_tenant("rst", {"mia": "member"})
    sid = required(eng, idp, t)
    tok = mint(eng, "mia", t, auth="oidc:corp")[1]["token"]
    assert with_token(eng, "GET", "/v1/members", tok)[0] == 200
    eng.stop()
    eng.start()
    status, out = req(eng, "GET", "/v1/members", tenant=t, session=sid)
    assert status == 403 and out["error"]["code"] == "sso_required" and "musubi login" in out["error"]["message"]
    status, out = with_token(eng, "GET", "/v1/members", tok)
    assert status == 403 and out["error"]["code"] == "session_invalid" and "restarted" in out["error"]["message"]
    assert tok not in str(out) and sid not in str(out)
    sid = sign_in(eng, idp)[1]["session"]  # signing in again is the fix
    assert req(eng, "GET", "/v1/members", tenant=t, session=sid)[0] == 200
    req(eng, "PUT", "/v1/sso/policy", {"required": False}, tenant=t, session=sid)


def test_an_owner_signed_in_through_saml_may_require_sso_without_break_glass(eng: Home) -> None:
    t = eng.new_tenant("rpol", {"ona": "owner"})
    key = mint(eng, "ona", t, purpose="ssh")[1]["token"]
    status, out = with_token(eng, "PUT", "/v1/sso/policy", key, {"required": True})
    assert status == 400 and out["error"]["field"] == "break_glass", out  # a key session would lock itself out
    saml = mint(eng, "ona", t, auth="saml:corp-saml")[1]["token"]
    status, out = with_token(eng, "PUT", "/v1/sso/policy", saml, {"required": True})
    assert status == 200 and out["sso_required"] is True, out
    assert with_token(eng, "GET", "/v1/members", saml)[0] == 200
    assert with_token(eng, "PUT", "/v1/sso/policy", saml, {"required": False})[0] == 200
