"""The mapping rules and session binding as pure functions over the engine's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.engine.runner import utcnow
from core.engine.state import State, Tenant
from core.identity.mapping import plan, values_of
from core.identity.service import IdentityService, Session, digest

T0 = datetime(2026, 12, 6)


def state(rules: list[tuple[str, str, str, str]], members: dict[tuple[str, str], str] | None = None,
          by: str = "sso:corp") -> State:
    st = State()
    st.tenants["acme"] = Tenant("acme", "active", T0, "root")
    for provider, claim, value, role in rules:
        st.sso_rules["acme"][(provider, claim, value)] = {"tenant_id": "acme", "provider": provider, "claim": claim,
                                                          "value": value, "role": role}
    for (user, project), role in (members or {}).items():
        st.members["acme"][(user, project)] = {"role": role, "created_at": T0, "created_by": by}
    return st


def actions(
    st: State, groups: set[str], roles: frozenset[str] | set[str] = frozenset(), provider: str = "corp"
) -> list[Any]:
    return [(c.tenant, c.action, c.role) for c in plan(st, "alice", provider, {"groups": groups, "roles": set(roles)})]


def test_most_permissions_wins_and_default_deny() -> None:
    st = state([("", "groups", "g-view", "viewer"), ("", "groups", "g-mem", "member"), ("", "roles", "Admin", "admin")])
    assert actions(st, {"g-view", "g-mem"}) == [("acme", "grant", "member")]
    assert actions(st, {"g-view"}, {"Admin"}) == [("acme", "grant", "admin")]
    assert actions(st, {"unknown"}) == []  # nothing matches, nothing bound: nothing to do


def test_provider_specific_rules() -> None:
    st = state([("okta", "groups", "g", "member")])
    assert actions(st, {"g"}, provider="corp") == []
    assert actions(st, {"g"}, provider="okta") == [("acme", "grant", "member")]


def test_managed_bindings_change_manual_ones_do_not() -> None:
    st = state([("", "groups", "g", "member")], {("alice", ""): "viewer"})
    assert actions(st, {"g"}) == [("acme", "update", "member")]
    assert actions(st, set()) == [("acme", "revoke", None)]
    manual = state([("", "groups", "g", "member")], {("alice", ""): "viewer"}, by="root")
    assert actions(manual, {"g"}) == [("acme", "keep_manual", "viewer")]
    assert actions(manual, set()) == []


def test_the_last_owner_is_never_revoked() -> None:
    st = state([("", "groups", "g", "owner")], {("alice", ""): "owner"})
    assert actions(st, set()) == [("acme", "keep_last_owner", "owner")]
    st.members["acme"][("bob", "")] = {"role": "owner", "created_at": T0, "created_by": "root"}
    assert actions(st, set()) == [("acme", "revoke", None)]


def test_rules_naming_a_deleted_role_are_skipped() -> None:
    st = state([("", "groups", "g", "gone-custom-role")])
    assert actions(st, {"g"}) == []


def test_claim_values() -> None:
    claims = {"groups": ["a", "b"], "roles": "Admin", "wids": ["x"]}
    assert values_of(claims, "groups", "roles") == {"groups": {"a", "b"}, "roles": {"Admin"}}
    assert values_of(claims, "groups", "roles", groups=["c"])["groups"] == {"c"}
    assert values_of({"groups": 5}, "groups", "roles")["groups"] == set()


def test_a_session_counts_only_for_its_os_user_and_until_it_expires() -> None:
    svc = IdentityService.__new__(IdentityService)  # resolve() reads only the sessions
    now = utcnow()
    svc.sessions = {
        digest("live"): Session("alice", "corp", "s", None, None, 0, (), now, now + timedelta(minutes=5)),
        digest("old"): Session("alice", "corp", "s", None, None, 0, (), now, now - timedelta(seconds=1)),
    }
    assert svc.resolve("live", "alice") is not None
    assert svc.resolve("live", "mallory") is None
    assert svc.resolve("old", "alice") is None
    assert svc.resolve("nope", "alice") is None and svc.resolve(None, "alice") is None
    assert svc.resolve("x" * 500, "alice") is None
