"""A project-scope role grants nothing outside its project (issue 9, item 3).

Each reproduction runs on a private home: the probes are refused (403 naming
the permission), change nothing, and after a restart the tenants, bindings,
projects and quotas are still exactly what they were and every chain verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import Home, unique
from .other_user import OTHER, need_root, open_to_others, public_dir, raw_as_other


def snapshot(h: Home) -> dict[str, Any]:
    """What a destructive probe could have changed, read as the system owner."""
    root = h.client()
    out: dict[str, Any] = {}
    for t in root.get("/v1/tenants"):
        c = h.client(t["name"])
        out[t["name"]] = {
            "status": t["status"],
            "members": sorted(
                (m["user"], m["project"] or "", m["role"]) for m in c.get("/v1/members")
            ),
            "projects": sorted((p["name"], p["path"]) for p in c.get("/v1/projects")),
            "quotas": sorted(
                (q["metric"], q["period"], q["user"] or "", str(q["limit"]))
                for q in c.get("/v1/quotas")["quotas"]
            ),
        }
    return out


def restart_unchanged(h: Home, before: dict[str, Any]) -> None:
    """Nothing changed, and nothing changes across a graceful restart."""
    assert snapshot(h) == before
    h.stop()
    h.start()
    assert snapshot(h) == before
    for t in before:
        assert h.client(t).post("/v1/audit/verify", {})["ok"], t


def denied(res: tuple[int, Any], perm: str) -> dict[str, Any]:
    status, body = res
    assert status == 403, (status, body)
    err: dict[str, Any] = body["error"]
    assert err["code"] == "permission_denied" and err["permission"] == perm, err
    return err


def _two_projects(h: Home, tenant: str, base: Path) -> None:
    c = h.client(tenant)
    for name in ("p1", "p2"):
        (base / name).mkdir()
        c.post("/v1/projects", {"path": str(base / name), "name": name})


def test_project_admin_cannot_act_on_the_tenant(home: Home, tmp_path: Path) -> None:
    home.start()
    t = home.new_tenant("ps", {"mem": "member"})
    _two_projects(home, t, tmp_path)
    home.client(t).post("/v1/members", {"user": "pat", "role": "admin", "project": "p1"})
    before = snapshot(home)

    def as_pat(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return home.raw(method, path, body, tenant=t, as_user="pat", project="p1")

    err = denied(as_pat("POST", "/v1/members", {"user": "eve", "role": "admin"}), "members.manage")
    assert "counts only for that project" in err["message"]
    denied(as_pat("POST", "/v1/members", {"user": "eve", "role": "admin", "project": "p2"}), "members.manage")
    denied(as_pat("DELETE", "/v1/members/mem"), "members.manage")
    denied(as_pat("DELETE", "/v1/projects/p2"), "projects.manage")
    denied(as_pat("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}), "quotas.manage")
    denied(as_pat("GET", "/v1/audit"), "audit.read")
    denied(as_pat("POST", "/v1/roles", {"name": "mine", "permissions": ["specs.read"]}), "members.manage")
    # Every refusal is on record under pat.
    refused = [e for e in home.audit(t, actor="pat") if e["outcome"] == "denied"]
    assert len(refused) == 7
    restart_unchanged(home, before)


def test_project_admin_still_runs_its_own_project(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("ps")
    _two_projects(eng, t, tmp_path)
    eng.client(t).post("/v1/members", {"user": "pat", "role": "admin", "project": "p1"})
    status, body = eng.raw("POST", "/v1/members", {"user": "dev", "role": "member", "project": "p1"},
                           tenant=t, as_user="pat", project="p1")
    assert status == 201, body
    assert eng.raw("DELETE", "/v1/members/dev?project=p1", tenant=t, as_user="pat", project="p1")[0] == 200
    # It sees its own project and its bindings, not the rest of the tenant.
    _s, projects = eng.raw("GET", "/v1/projects", tenant=t, as_user="pat", project="p1")
    assert [p["name"] for p in projects] == ["p1"]
    _s, members = eng.raw("GET", "/v1/members", tenant=t, as_user="pat", project="p1")
    assert {m["project"] for m in members} == {"p1"}


def test_project_owner_cannot_make_a_system_owner(home: Home, tmp_path: Path) -> None:
    home.start()
    _two_projects(home, "default", tmp_path)
    home.client("default").post("/v1/members", {"user": "po", "role": "owner", "project": "p1"})
    before = snapshot(home)

    def as_po(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return home.raw(method, path, body, tenant="default", as_user="po", project="p1")

    denied(as_po("POST", "/v1/members", {"user": "mallory", "role": "owner"}), "members.manage")
    denied(as_po("POST", "/v1/tenants", {"name": unique("evil")}), "tenant.manage")
    denied(as_po("POST", "/v1/audit/prune", {"before": "2020-01-01"}), "tenant.manage")
    denied(as_po("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}), "quotas.manage")
    # whoami tells the two apart: owner of p1, holding nothing tenant-wide.
    _s, who = home.raw("GET", "/v1/whoami", tenant="default", as_user="po", project="p1")
    assert who["roles"] == ["owner"] and "impersonate" in who["permissions"]
    assert who["tenant_permissions"] == []
    restart_unchanged(home, before)


def test_os_user_owning_one_project_cannot_impersonate_root(home: Home) -> None:
    """The real OS user ``nobody`` owns project p1 of 'default' and asks to act as the engine's user."""
    need_root()
    home.start()
    open_to_others(home)
    me = home.client().get("/v1/whoami")["user"]
    p1 = public_dir()
    home.client("default").post("/v1/projects", {"path": str(p1), "name": "p1"})
    home.client("default").post("/v1/members", {"user": OTHER, "role": "owner", "project": "p1"})
    before = snapshot(home)

    err = denied(raw_as_other(home, "POST", "/v1/tenants", {"name": unique("evil")}, tenant="default", as_user=me,
                              project="p1"), "impersonate")
    assert "project-scope role never allows it" in err["message"]
    denied(raw_as_other(home, "POST", "/v1/engine/stop", {}, as_user=me, project="p1"), "impersonate")
    # As itself it holds nothing outside p1 either.
    denied(raw_as_other(home, "POST", "/v1/tenants", {"name": unique("evil")}, tenant="default", project="p1"),
           "tenant.manage")
    status, _ = raw_as_other(home, "POST", "/v1/engine/stop", {}, project="p1")
    assert status == 403
    assert home.pid()  # still running
    (ev, *_rest) = [e for e in home.audit("default", action="impersonate") if e["actor"] == OTHER]
    assert ev["outcome"] == "denied" and ev["resource"] == f"user:{me}"
    restart_unchanged(home, before)


def test_impersonating_a_system_owner_lends_no_system_power(home: Home) -> None:
    """A tenant owner may act as a member of its tenant, but gains nothing the impersonator lacks."""
    need_root()
    home.start()
    open_to_others(home)
    me = home.client().get("/v1/whoami")["user"]
    t = home.new_tenant("own", {OTHER: "owner"})  # the engine user owns it too
    before = snapshot(home)
    denied(raw_as_other(home, "POST", "/v1/tenants", {"name": unique("evil")}, tenant=t, as_user=me), "tenant.manage")
    denied(raw_as_other(home, "POST", f"/v1/tenants/{t}/suspend", {}, tenant=t, as_user=me), "tenant.manage")
    assert raw_as_other(home, "POST", "/v1/engine/stop", {}, as_user=me)[0] == 403
    # What both hold in the tenant still works.
    status, who = raw_as_other(home, "GET", "/v1/whoami", tenant=t, as_user=me)
    assert status == 200 and who["user"] == me and who["real_user"] == OTHER
    assert raw_as_other(home, "GET", "/v1/quotas", tenant=t, as_user=me)[0] == 200
    restart_unchanged(home, before)


def test_project_auditor_sees_no_tenant_audit(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("pa")
    _two_projects(eng, t, tmp_path)
    eng.client(t).post("/v1/members", {"user": "aud", "role": "auditor", "project": "p1"})

    def as_aud(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return eng.raw(method, path, body, tenant=t, as_user="aud", project="p1")

    denied(as_aud("GET", "/v1/audit"), "audit.read")
    denied(as_aud("POST", "/v1/audit/verify", {}), "audit.read")
    denied(as_aud("POST", "/v1/audit/checkpoint", {}), "audit.export")
    denied(as_aud("POST", "/v1/audit/export", {"format": "jsonl", "path": str(tmp_path / "x.jsonl")}), "audit.export")
    assert not (tmp_path / "x.jsonl").exists()
    # ... but may still read the specs of its project.
    assert as_aud("GET", "/v1/projects")[0] == 200
