"""Engine-minted session tokens (core/identity/sessions.py): who may mint, what a token lends, when it stops.

The serve process (the engine's OS user) mints a token per remote session; the TUI
it starts presents it and the engine acts as the token's user in the token's tenant.
"""

from __future__ import annotations

import time

from core.engine.access import engine_os_user
from tests.engine.helpers import Home
from tests.engine.other_user import OTHER, need_root, open_to_others, raw_as_other

from .helpers import actions, mint, raw


def test_a_token_acts_as_its_user_in_its_tenant_and_is_audited(eng: Home) -> None:
    t = eng.new_tenant("ses", {"mia": "member"})
    s = mint(eng, "mia", t, client="ssh 127.0.0.1 key SHA256:abc")
    assert s["token"].startswith("mst_") and s["user"] == "mia" and s["tenant"] == t
    status, who = raw(eng, "GET", "/v1/whoami", token=s["token"])
    assert status == 200, who
    assert (who["user"], who["real_user"], who["tenant"]) == ("mia", "mia", t)
    assert who["system_admin"] is False
    raw(eng, "GET", "/v1/whoami", token=s["token"])
    # A write through the session names the session in its audit event.
    status, out = raw(eng, "POST", "/v1/usage", {"model": "gpt-5.4", "input_tokens": 1}, token=s["token"])
    assert status in (200, 201), out
    minted = actions(eng, t, "session.mint")
    assert minted[-1]["details"]["user"] == "mia" and minted[-1]["actor"] == engine_os_user()
    assert s["token"] not in str(eng.audit(t))  # the token itself is never recorded
    used = actions(eng, t, "session.use")
    assert len(used) == 1 and used[0]["actor"] == "mia"  # the first use only
    assert actions(eng, t, "usage.record")[-1]["details"]["session"] == s["id"]


def test_a_session_never_gets_the_engine_users_powers(eng: Home) -> None:
    me = engine_os_user()
    t = eng.new_tenant("ses")  # the engine's user owns it, so a session *named* like that user may be minted
    s = mint(eng, me, t)
    assert raw(eng, "GET", "/v1/whoami", token=s["token"])[1]["user"] == me
    status, out = raw(eng, "POST", "/v1/sessions", {"user": me, "tenant": t, "purpose": "ssh"}, token=s["token"])
    assert status == 403 and "only the OS user who runs the engine" in out["error"]["message"], out
    status, out = raw(eng, "POST", "/v1/engine/stop", token=s["token"])
    assert status == 403, out
    assert raw(eng, "GET", "/v1/sessions", token=s["token"])[0] == 403
    assert eng.raw("GET", "/v1/health")[0] == 200


def test_minting_refused_for_as_and_strangers_and_users_without_a_role(eng: Home) -> None:
    t = eng.new_tenant("ses", {"mia": "owner"})
    status, out = raw(eng, "POST", "/v1/sessions", {"user": "mia", "tenant": t, "purpose": "ssh"}, as_user="mia",
                      tenant=t)
    assert status == 403, out
    status, out = raw(eng, "POST", "/v1/sessions", {"user": "zed", "tenant": t, "purpose": "ssh"})
    assert status == 403 and "has no role there" in out["error"]["message"], out
    status, out = raw(eng, "POST", "/v1/sessions", {"user": "mia", "tenant": "no-such-t", "purpose": "ssh"})
    assert status == 403 and "no such tenant" in out["error"]["message"], out
    status, out = raw(eng, "POST", "/v1/sessions", {"user": "mia", "tenant": t, "purpose": "telnet"})
    assert status == 400 and out["error"]["field"] == "purpose", out
    status, out = raw(eng, "POST", "/v1/sessions", {"user": "mia", "tenant": t, "purpose": "ssh", "ttl_s": 0})
    assert status == 400 and out["error"]["field"] == "ttl_s", out
    denied = [e for e in actions(eng, t, "session.mint") if e["outcome"] == "denied"]
    assert len(denied) == 2  # --as and the user without a role (the bad fields are refused before any op)
    assert raw(eng, "GET", "/v1/sessions")[0] == 200


def test_minting_refused_for_another_os_user(eng: Home) -> None:
    need_root()
    open_to_others(eng)
    t = eng.new_tenant("ses", {OTHER: "owner", "mia": "member"})
    status, out = raw_as_other(eng, "POST", "/v1/sessions", {"user": "mia", "tenant": t, "purpose": "ssh"})
    assert status == 403 and "only the OS user who runs the engine" in out["error"]["message"], out
    denied = [e for e in actions(eng, t, "session.mint") if e["outcome"] == "denied"]
    assert denied and denied[-1]["actor"] == OTHER


def test_a_token_presented_by_another_os_user_is_refused(eng: Home) -> None:
    need_root()
    open_to_others(eng)
    t = eng.new_tenant("ses", {"mia": "member"})
    s = mint(eng, "mia", t)
    status, out = raw_as_other(eng, "GET", "/v1/whoami", headers={"X-Musubi-Session": s["token"]})
    assert status == 403 and out["error"]["code"] == "session_invalid", out
    refused = [e for e in actions(eng, t, "session.use") if e["outcome"] == "denied"]
    assert refused and refused[-1]["details"]["code"] == "session_invalid"


def test_expired_revoked_unknown_and_wrong_tenant_tokens_are_refused(eng: Home) -> None:
    t = eng.new_tenant("ses", {"mia": "member"})
    other = eng.new_tenant("ses", {"mia": "member"})
    short = mint(eng, "mia", t, ttl_s=1)
    live = mint(eng, "mia", t)
    gone = mint(eng, "mia", t)
    # Logout: a session may end itself; the engine's user may end any.
    status, out = raw(eng, "DELETE", f"/v1/sessions/{gone['id']}?reason=logout", token=gone["token"])
    assert status == 200 and out["revoked"] is True, out
    for _ in range(3):  # a TUI still refreshing after its end: refused each time, audited once
        status, out = raw(eng, "GET", "/v1/whoami", token=gone["token"])
        assert status == 403 and "was ended (logout)" in out["error"]["message"], out
    ended = [e for e in actions(eng, t, "session.use") if "was ended" in e["details"].get("reason", "")]
    assert len(ended) == 1
    # One session may not end another.
    status, out = raw(eng, "DELETE", f"/v1/sessions/{short['id']}", token=live["token"])
    assert status == 403, out
    status, out = raw(eng, "GET", "/v1/whoami", token="mst_" + "x" * 43)
    assert status == 403 and "unknown" in out["error"]["message"], out
    status, out = raw(eng, "GET", "/v1/whoami", token=live["token"], tenant=other)
    assert status == 403 and "not " + repr(other) in out["error"]["message"], out
    time.sleep(1.2)  # past the 1 s life of `short` (the engine's clock decides; no timing asserted)
    status, out = raw(eng, "GET", "/v1/whoami", token=short["token"])
    assert status == 403 and "has expired" in out["error"]["message"], out
    listed = {r["id"] for r in raw(eng, "GET", "/v1/sessions")[1]}
    assert live["id"] in listed and gone["id"] not in listed and short["id"] not in listed
    assert raw(eng, "DELETE", f"/v1/sessions/{live['id']}?reason=disconnect")[0] == 200
    assert raw(eng, "GET", "/v1/whoami", token=live["token"])[0] == 403
    reasons = [e["details"].get("reason") for e in actions(eng, t, "session.use") if e["outcome"] == "denied"]
    assert any("logout" in (r or "") for r in reasons) and any("expired" in (r or "") for r in reasons)
    revoked = actions(eng, t, "session.revoke")
    assert [e["details"]["reason"] for e in revoked if e["outcome"] == "success"] == ["logout", "disconnect"]


def test_remote_events_are_audited_in_the_tenant_or_refused(eng: Home) -> None:
    t = eng.new_tenant("ses", {"mia": "member"})
    body = {"mode": "ssh", "event": "login", "user": "mia", "tenant": t, "client": "127.0.0.1:5000 SHA256:k"}
    status, out = raw(eng, "POST", "/v1/remote/events", body)
    assert status == 201 and out["tenant"] == t, out
    status, out = raw(eng, "POST", "/v1/remote/events", {**body, "event": "refused", "reason": "unknown key"})
    assert status == 201, out
    status, out = raw(eng, "POST", "/v1/remote/events", {"mode": "ssh", "event": "refused", "reason": "unknown key"})
    assert status == 201 and out["tenant"] == "_system", out
    status, out = raw(eng, "POST", "/v1/remote/events", {**body, "event": "hello"})
    assert status == 400 and out["error"]["field"] == "event", out
    ev = actions(eng, t, "remote.")
    assert [(e["action"], e["outcome"]) for e in ev] == [("remote.login", "success"), ("remote.refused", "denied")]
    assert ev[1]["details"]["reason"] == "unknown key"
    s = mint(eng, "mia", t)
    assert raw(eng, "POST", "/v1/remote/events", body, token=s["token"])[0] == 403
