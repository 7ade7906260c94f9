"""The permission matrix over real routes, escalation guards, owners, custom roles, project scope.

For each built-in role a user is bound in a fresh tenant (and, for the
cross-tenant actions, in the system tenant 'default'), then every
permission-gated action is called as that user: it must succeed exactly when
``core.rbac.BUILTIN_ROLES`` grants the permission, and a refusal must be a 403
naming the permission, audited as 'denied', and change nothing else.

Where a grant counts (tenant scope, the request's project, another project) is
checked for every route of the live route table in ``test_rbac_scope_matrix.py``.
"""

from __future__ import annotations

import os
import pwd
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.errors import EXIT_DENIED, PermissionDenied
from core.rbac import BUILTIN_ROLES

from .helpers import Home, unique, utc_iso

ME = pwd.getpwuid(os.getuid()).pw_name


@dataclass
class Case:
    """One role's user in its own tenant."""

    h: Home
    tenant: str
    user: str
    scratch: Path

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.h.raw(method, path, body, tenant=self.tenant, as_user=self.user)

    @property
    def root(self) -> Any:
        return self.h.client(self.tenant)


def _suspended_target(c: Case) -> str:
    t = c.h.new_tenant("tgt")
    c.h.client().post(f"/v1/tenants/{t}/suspend", {})
    return t


def _with_member(c: Case) -> str:
    u = unique("victim")
    c.root.post("/v1/members", {"user": u, "role": "guest"})
    return u


def _with_role(c: Case) -> str:
    r = "r" + unique("x").replace("-", "_")
    c.root.post("/v1/roles", {"name": r, "permissions": ["specs.read"]})
    return r


def _with_project(c: Case) -> str:
    d = tempfile.mkdtemp(dir=c.scratch)
    return str(c.root.post("/v1/projects", {"path": d})["name"])


def _with_quota(c: Case) -> None:
    c.root.put("/v1/quotas", {"metric": "requests", "limit": 10_000, "period": "minute"})


Act = Callable[[Case], tuple[int, Any]]

# name -> (audit action, required permission, call).  "system" marks tenant.manage in 'default'.
ACTIONS: dict[str, tuple[str, str, Act]] = {
    "tenant-create": ("tenant.create", "tenant.manage", lambda c: c.call("POST", "/v1/tenants", {"name": unique("mx")})),
    "tenant-suspend": ("tenant.suspend", "tenant.manage", lambda c: c.call("POST", f"/v1/tenants/{c.h.new_tenant('tgt')}/suspend", {})),
    "tenant-resume": ("tenant.resume", "tenant.manage", lambda c: c.call("POST", f"/v1/tenants/{_suspended_target(c)}/resume", {})),
    "member-add": ("member.add", "members.manage", lambda c: c.call("POST", "/v1/members", {"user": unique("g"), "role": "guest"})),
    "member-remove": ("member.remove", "members.manage", lambda c: c.call("DELETE", f"/v1/members/{_with_member(c)}")),
    "role-create": ("role.create", "members.manage", lambda c: c.call("POST", "/v1/roles", {"name": "r" + unique("c").replace("-", "_"), "permissions": ["specs.read"]})),
    "role-delete": ("role.delete", "members.manage", lambda c: c.call("DELETE", f"/v1/roles/{_with_role(c)}")),
    "quota-set": ("quota.set", "quotas.manage", lambda c: c.call("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5_000_000, "period": "month"})),
    "quota-remove": ("quota.remove", "quotas.manage", lambda c: (_with_quota(c), c.call("DELETE", "/v1/quotas?metric=requests&period=minute"))[1]),
    "quota-status": ("quota.status", "quotas.read", lambda c: c.call("GET", "/v1/quotas")),
    "usage-history": ("usage.history", "quotas.read", lambda c: c.call("GET", "/v1/usage/history")),
    "reservations-list": ("usage.reservations", "quotas.read", lambda c: c.call("GET", "/v1/reservations")),
    "usage-record": ("usage.record", "usage.record", lambda c: c.call("POST", "/v1/usage", {"model": "m", "input_tokens": 1})),
    "usage-reserve": ("usage.reserve", "usage.record", lambda c: c.call("POST", "/v1/reservations", {"tokens": 1})),
    "audit-list": ("audit.list", "audit.read", lambda c: c.call("GET", "/v1/audit")),
    "audit-verify": ("audit.verify", "audit.read", lambda c: c.call("POST", "/v1/audit/verify", {})),
    "audit-export": ("audit.export", "audit.export", lambda c: c.call("POST", "/v1/audit/export", {"format": "jsonl", "path": str(c.scratch / unique("x"))})),
    "audit-checkpoint": ("audit.checkpoint", "audit.export", lambda c: c.call("POST", "/v1/audit/checkpoint", {})),
    "audit-prune": ("audit.prune", "tenant.manage", lambda c: c.call("POST", "/v1/audit/prune", {"before": utc_iso()})),
    "project-add": ("project.add", "projects.manage", lambda c: c.call("POST", "/v1/projects", {"path": tempfile.mkdtemp(dir=c.scratch)})),
    "project-remove": ("project.remove", "projects.manage", lambda c: c.call("DELETE", f"/v1/projects/{_with_project(c)}")),
}

# Reads every role of the tenant may make.
MEMBER_READS: dict[str, tuple[str, str]] = {
    "whoami": ("GET", "/v1/whoami"),
    "roles-list": ("GET", "/v1/roles"),
    "role-show": ("GET", "/v1/roles/guest"),
    "members-list": ("GET", "/v1/members"),
    "projects-list": ("GET", "/v1/projects"),
    "tenants-list": ("GET", "/v1/tenants"),
}


@pytest.fixture(scope="module")
def cases(eng: Home, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    scratch = tmp_path_factory.mktemp("rbac")
    out = {}
    for role in BUILTIN_ROLES:
        user = unique(f"u-{role}")
        tenant = eng.new_tenant(f"rb-{role}", {user: role})
        # The same role in the system tenant decides the cross-tenant actions.
        eng.client("default").post("/v1/members", {"user": user, "role": role})
        out[role] = Case(eng, tenant, user, scratch)
    return out


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", list(BUILTIN_ROLES))
def test_permission_matrix(cases: dict[str, Case], role: str, action: str) -> None:
    c = cases[role]
    audit_action, perm, act = ACTIONS[action]
    allowed = perm in BUILTIN_ROLES[role]
    before = c.h.head_seq(c.tenant)
    status, body = act(c)
    if allowed:
        assert 200 <= status < 300, f"{role} should be allowed {action}: {status} {body}"
        return
    assert status == 403, f"{role} should be denied {action} ({perm}): {status} {body}"
    err = body["error"]
    assert err["code"] == "permission_denied"
    assert err["permission"] == perm
    assert perm in err["message"] and c.user in err["message"]
    # The denial, and nothing else, reached the tenant's audit chain.
    new = c.h.audit(c.tenant, after_seq=before)
    new = [e for e in new if e["actor"] == c.user]
    assert len(new) == 1, new
    ev = new[0]
    assert ev["outcome"] == "denied" and ev["action"] == audit_action
    assert ev["details"]["permission"] == perm
    assert ev["details"]["impersonator"] == ME


@pytest.mark.parametrize("read", list(MEMBER_READS))
@pytest.mark.parametrize("role", list(BUILTIN_ROLES))
def test_every_role_may_read_its_tenant(cases: dict[str, Case], role: str, read: str) -> None:
    c = cases[role]
    status, body = c.call(*MEMBER_READS[read])
    assert status == 200, body
    if read == "whoami":
        assert body["user"] == c.user and body["real_user"] == ME
        assert body["roles"] == [role]
        assert set(body["permissions"]) == set(BUILTIN_ROLES[role])


def test_typed_client_raises_permission_denied_with_exit_4(cases: dict[str, Case]) -> None:
    c = cases["viewer"]
    with pytest.raises(PermissionDenied) as ei:
        c.h.client(c.tenant, as_user=c.user).put("/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"})
    assert ei.value.exit_code == EXIT_DENIED == 4
    assert ei.value.code == "permission_denied" and ei.value.extra["permission"] == "quotas.manage"


def test_denied_tenant_create_creates_nothing(cases: dict[str, Case]) -> None:
    c = cases["admin"]
    name = unique("nope")
    status, _ = c.call("POST", "/v1/tenants", {"name": name})
    assert status == 403
    assert c.h.raw("GET", f"/v1/tenants/{name}")[0] == 404


def test_denied_suspend_leaves_target_active(cases: dict[str, Case]) -> None:
    c = cases["admin"]
    t = c.h.new_tenant("keep")
    assert c.call("POST", f"/v1/tenants/{t}/suspend", {})[0] == 403
    assert c.h.client().get(f"/v1/tenants/{t}")["status"] == "active"


def test_denied_export_writes_no_file(cases: dict[str, Case]) -> None:
    c = cases["member"]
    out = c.scratch / unique("nofile")
    assert c.call("POST", "/v1/audit/export", {"format": "csv", "path": str(out)})[0] == 403
    assert not out.exists()


def test_impersonated_write_audits_both_names(cases: dict[str, Case]) -> None:
    c = cases["admin"]
    g = unique("g")
    before = c.h.head_seq(c.tenant)
    assert c.call("POST", "/v1/members", {"user": g, "role": "viewer"})[0] == 201
    (ev,) = c.h.audit(c.tenant, after_seq=before)
    assert ev["action"] == "member.add" and ev["outcome"] == "success"
    assert ev["actor"] == c.user and ev["details"]["impersonator"] == ME
    assert ev["resource"] == f"member:{g}"


# -- escalation and owners ------------------------------------------------------------------


def test_admin_cannot_grant_owner(cases: dict[str, Case]) -> None:
    c = cases["admin"]
    target = unique("esc")
    status, body = c.call("POST", "/v1/members", {"user": target, "role": "owner"})
    assert status == 403 and body["error"]["permission"] in ("impersonate", "tenant.manage")
    assert target not in {m["user"] for m in c.root.get("/v1/members")}
    # Nor may an admin promote themself.
    assert c.call("POST", "/v1/members", {"user": c.user, "role": "owner"})[0] == 403
    assert {m["role"] for m in c.root.get("/v1/members") if m["user"] == c.user} == {"admin"}


def test_admin_cannot_create_a_role_above_itself(cases: dict[str, Case]) -> None:
    c = cases["admin"]
    name = "r" + unique("up").replace("-", "_")
    status, body = c.call("POST", "/v1/roles", {"name": name, "permissions": ["specs.read", "impersonate"]})
    assert status == 403 and body["error"]["permission"] == "impersonate"
    assert name not in {r["name"] for r in c.root.get("/v1/roles")}


def test_admin_cannot_remove_an_owner(eng: Home) -> None:
    t = eng.new_tenant("own", {"adm": "admin", "own2": "owner"})
    status, body = eng.raw("DELETE", "/v1/members/own2", tenant=t, as_user="adm")
    assert status == 403 and body["error"]["permission"] == "tenant.manage"
    assert ("own2", "owner") in {(m["user"], m["role"]) for m in eng.client(t).get("/v1/members")}


def test_last_owner_cannot_be_removed_or_demoted(eng: Home) -> None:
    t = eng.new_tenant("last")
    c = eng.client(t)
    status, body = eng.raw("DELETE", f"/v1/members/{ME}", tenant=t)
    assert status == 409 and "last owner" in body["error"]["message"]
    status, body = eng.raw("POST", "/v1/members", {"user": ME, "role": "viewer"}, tenant=t)
    assert status == 409 and "last owner" in body["error"]["message"]
    assert [m["role"] for m in c.get("/v1/members") if m["user"] == ME] == ["owner"]
    # With a second owner, the first may step down.
    c.post("/v1/members", {"user": "co-owner", "role": "owner"})
    assert eng.raw("DELETE", f"/v1/members/{ME}", tenant=t)[0] == 200
    assert [(m["user"], m["role"]) for m in c.get("/v1/members")] == [("co-owner", "owner")]
    # Having left, the caller may no longer act as anyone there.
    status, body = eng.raw("GET", "/v1/quotas", tenant=t, as_user="co-owner")
    assert status == 403 and body["error"]["permission"] == "impersonate"


def test_custom_role_unknown_permission_is_bad_request(eng: Home) -> None:
    t = eng.new_tenant("cr")
    before = eng.head_seq(t)
    status, body = eng.raw("POST", "/v1/roles", {"name": "weird", "permissions": ["specs.read", "specs.eat"]}, tenant=t)
    assert status == 400 and "specs.eat" in body["error"]["message"]
    assert "Valid permissions" in body["error"]["message"]
    assert eng.head_seq(t) == before
    assert "weird" not in {r["name"] for r in eng.client(t).get("/v1/roles")}


def test_custom_role_grants_exactly_its_permissions(eng: Home) -> None:
    t = eng.new_tenant("cr", {})
    c = eng.client(t)
    c.post("/v1/roles", {"name": "reviewer", "permissions": ["audit.read", "specs.read"]})
    c.post("/v1/members", {"user": "rev", "role": "reviewer"})
    assert eng.raw("GET", "/v1/audit", tenant=t, as_user="rev")[0] == 200
    status, body = eng.raw("GET", "/v1/quotas", tenant=t, as_user="rev")
    assert status == 403 and body["error"]["permission"] == "quotas.read"
    # A bound role cannot be deleted from under its members.
    status, body = eng.raw("DELETE", "/v1/roles/reviewer", tenant=t)
    assert status == 409 and "rev" in body["error"]["message"]


def test_impersonation_needs_the_impersonate_permission(eng: Home) -> None:
    t = eng.new_tenant("imp", {"boss": "owner"})
    eng.client(t).post("/v1/members", {"user": ME, "role": "admin"})  # step down from owner
    status, body = eng.raw("GET", "/v1/quotas", tenant=t, as_user="alice")
    assert status == 403 and body["error"]["permission"] == "impersonate"
    (ev,) = eng.audit(t, action="impersonate")
    assert ev["actor"] == ME and ev["outcome"] == "denied" and ev["resource"] == "user:alice"
    # Without --as the same caller still works as itself.
    assert eng.raw("GET", "/v1/quotas", tenant=t)[0] == 200


# -- project-scoped bindings ---------------------------------------------------------------


@pytest.fixture(scope="module")
def projects(eng: Home, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    base = tmp_path_factory.mktemp("proj")
    d1, d2, d1x = base / "alpha", base / "beta", base / "alphax"
    for d in (d1, d2, d1x, d1 / "sub" / "deep"):
        d.mkdir(parents=True)
    t = eng.new_tenant("ps")
    c = eng.client(t)
    c.post("/v1/projects", {"path": str(d1)})
    c.post("/v1/projects", {"path": str(d2)})
    c.post("/v1/projects", {"path": str(d1x)})
    c.post("/v1/members", {"user": "pa", "role": "member", "project": "alpha"})
    return t, d1, d2


def _usage(eng: Home, t: str, **where: Any) -> tuple[int, Any]:
    return eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 1}, tenant=t, as_user="pa", **where)


def test_project_binding_applies_with_matching_project_header(eng: Home, projects: tuple[str, Path, Path]) -> None:
    t, _d1, _d2 = projects
    status, body = _usage(eng, t, project="alpha")
    assert status == 201, body
    (ev,) = eng.audit(t, action="usage.record", actor="pa")
    assert ev["details"]["project"] == "alpha"


@pytest.mark.parametrize("where", ["beta", "alphax", None])
def test_project_binding_refused_for_other_projects(eng: Home, projects: tuple[str, Path, Path], where: str | None) -> None:
    t, _d1, _d2 = projects
    status, body = _usage(eng, t, project=where)
    assert status == 403 and body["error"]["permission"] == "usage.record"


def test_project_binding_applies_when_cwd_is_inside_the_project(eng: Home, projects: tuple[str, Path, Path]) -> None:
    t, d1, d2 = projects
    assert _usage(eng, t, cwd=str(d1))[0] == 201
    assert _usage(eng, t, cwd=str(d1 / "sub" / "deep"))[0] == 201
    # A sibling whose name merely starts with the project's path is not inside it.
    assert _usage(eng, t, cwd=str(d1) + "x")[0] == 403
    assert _usage(eng, t, cwd=str(d2))[0] == 403
    assert _usage(eng, t, cwd=str(d1.parent))[0] == 403


def test_whoami_shows_project_roles(eng: Home, projects: tuple[str, Path, Path]) -> None:
    t, d1, _d2 = projects
    s, inside = eng.raw("GET", "/v1/whoami", tenant=t, as_user="pa", cwd=str(d1))
    assert s == 200 and inside["project"] == "alpha" and inside["roles"] == ["member"]
    s, outside = eng.raw("GET", "/v1/whoami", tenant=t, as_user="pa")
    assert s == 200 and outside["project"] is None and outside["roles"] == []


def test_unknown_project_header_is_not_found(eng: Home, projects: tuple[str, Path, Path]) -> None:
    t, _d1, _d2 = projects
    status, body = _usage(eng, t, project="gamma")
    assert status == 404 and "gamma" in body["error"]["message"]


def test_removing_a_project_drops_its_bindings(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("pr")
    c = eng.client(t)
    c.post("/v1/projects", {"path": str(tmp_path)})
    c.post("/v1/members", {"user": "pb", "role": "member", "project": tmp_path.name})
    res = c.delete(f"/v1/projects/{tmp_path.name}")
    assert res["bindings_removed"] == 1
    assert "pb" not in {m["user"] for m in c.get("/v1/members")}
