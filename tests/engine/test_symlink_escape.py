"""Paths are resolved, then checked (issue 9, item 5).

A symlink inside a registered project is judged by where it leads: trace
reads and links.yml writes through it are refused, the cost estimate neither
reads nor sizes a file behind it, and a registered folder swapped for a
symlink is refused.  Registering a project needs the caller (the OS user on
the socket) to be able to read it, and refuses system folders, the engine's
home and folders another tenant registered unless a system owner says
``shared``.  Destructive probes are followed by a restart that shows nothing
changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.trace.fixture import build_repo

from .helpers import Home, unique
from .other_user import OTHER, need_root, open_to_others, public_dir, raw_as_other
from .test_project_scope import denied, restart_unchanged, snapshot

MODEL = "gpt-5.4"


def two_tenants(h: Home, base: Path) -> tuple[str, Path, str, Path]:
    """Tenant A (member mia) with repo pa, tenant B with repo pb; each registered as a project."""
    pa, pb = build_repo(base / "pa", git=False), build_repo(base / "pb", git=False)
    a = h.new_tenant("a", {"mia": "member"})
    b = h.new_tenant("b")
    h.client(a).post("/v1/projects", {"path": str(pa), "name": "pa"})
    h.client(b).post("/v1/projects", {"path": str(pb), "name": "pb"})
    return a, pa, b, pb


def test_trace_through_a_link_to_another_tenants_repo_is_refused(home: Home, tmp_path: Path) -> None:
    home.start()
    a, pa, _b, pb = two_tenants(home, tmp_path)
    os.symlink(pb, pa / "other")
    before = snapshot(home)
    err = denied(home.raw("GET", f"/v1/trace?path={pa / 'other'}", tenant=a, as_user="mia"), "specs.read")
    assert f"leads to {pb}" in err["message"]
    links = pb / "storage" / "traceability" / "links.yml"
    denied(home.raw("POST", "/v1/trace/review", {"path": str(pa / "other"), "id": "REQ-AUTH-001"},
                    tenant=a, as_user="mia"), "specs.write")
    assert not links.exists()
    # The refusals are audited in tenant A.
    assert [e["outcome"] for e in home.audit(a, actor="mia")] == ["denied", "denied"]
    # Its own repository still works, by path or by project.
    assert home.raw("GET", f"/v1/trace?path={pa}&view=summary", tenant=a, as_user="mia")[0] == 200
    restart_unchanged(home, before)


def test_links_yml_behind_a_symlinked_folder_is_not_written(home: Home, tmp_path: Path) -> None:
    home.start()
    a, pa, _b, pb = two_tenants(home, tmp_path)
    (pb / "storage" / "traceability").mkdir(parents=True, exist_ok=True)
    (pa / "storage" / "traceability").parent.mkdir(parents=True, exist_ok=True)
    os.symlink(pb / "storage" / "traceability", pa / "storage" / "traceability")
    before = snapshot(home)
    for body in (
        {"id": "REQ-AUTH-001"},
        {"requirement": "REQ-AUTH-001", "kind": "code", "target": "src/auth/login.py"},
    ):
        route = "/v1/trace/review" if "id" in body else "/v1/trace/links"
        status, res = home.raw("POST", route, body, tenant=a, as_user="mia", project="pa")
        assert status == 403, res
        assert "leads outside the repository" in res["error"]["message"]
    assert not (pb / "storage" / "traceability" / "links.yml").exists()
    restart_unchanged(home, before)


def test_swapped_project_folder_is_refused(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("sw", {"mia": "member"})
    mine = build_repo(tmp_path / "mine", git=False)
    theirs = build_repo(tmp_path / "theirs", git=False)
    eng.client(t).post("/v1/projects", {"path": str(mine), "name": "mine"})
    assert eng.raw("GET", "/v1/trace?view=summary", tenant=t, as_user="mia", project="mine")[0] == 200
    mine.rename(tmp_path / "moved")
    os.symlink(theirs, mine)
    status, body = eng.raw("GET", "/v1/trace?view=summary", tenant=t, as_user="mia", project="mine")
    assert status == 403 and f"now leads to {theirs}" in body["error"]["message"], body


def _estimate(h: Home, tenant: str, paths: list[str]) -> tuple[int, Any]:
    return raw_as_other(h, "POST", "/v1/cost/estimate", {"models": [MODEL], "paths": paths}, tenant=tenant)


def test_cost_estimate_reads_nothing_behind_a_link_or_unreadable_to_the_caller(home: Home) -> None:
    need_root()
    home.start()
    open_to_others(home)
    proj = public_dir("cost")
    (proj / "ok.md").write_text("hello world\n")
    (proj / "ok.md").chmod(0o644)
    os.symlink("/etc/shadow", proj / "shadow")
    (proj / "secret.txt").write_text("root only\n")
    (proj / "secret.txt").chmod(0o600)
    t = home.new_tenant("cost", {OTHER: "member"})
    home.client(t).post("/v1/projects", {"path": str(proj), "name": "cost"})

    status, body = _estimate(home, t, [str(proj / "shadow")])
    assert status == 403 and "leads to /etc/shadow" in body["error"]["message"], body
    assert "size" not in str(body) and "tokens" not in body
    status, body = _estimate(home, t, [str(proj / "secret.txt")])
    assert status == 403 and f"{OTHER} cannot read" in body["error"]["message"], body
    status, body = _estimate(home, t, [str(proj / "ok.md")])
    assert status == 200, body
    # Each refusal is on record in the tenant, under the real caller.
    refused = [e for e in home.audit(t, action="cost.estimate") if e["outcome"] == "denied"]
    assert len(refused) == 2 and {e["actor"] for e in refused} == {OTHER}


def test_project_root_readable_only_by_the_engine_cannot_be_registered_by_others(home: Home) -> None:
    need_root()
    home.start()
    open_to_others(home)
    t = home.new_tenant("reg", {OTHER: "admin"})
    private = public_dir("priv")
    private.chmod(0o700)  # root's alone
    before = snapshot(home)
    err = denied(raw_as_other(home, "POST", "/v1/projects", {"path": str(private)}, tenant=t),
                 "read access to the folder")
    assert f"{OTHER} (the OS user calling) cannot read" in err["message"]
    readable = public_dir("pub")
    restart_unchanged(home, before)
    open_to_others(home)  # the restart made a new socket
    status, body = raw_as_other(home, "POST", "/v1/projects", {"path": str(readable)}, tenant=t)
    assert status == 201, body


def test_other_tenants_folders_and_system_folders_are_refused(home: Home, tmp_path: Path) -> None:
    home.start()
    theirs = tmp_path / "theirs"
    (theirs / "sub").mkdir(parents=True)
    b = home.new_tenant("b")
    home.client(b).post("/v1/projects", {"path": str(theirs), "name": "theirs"})
    a = home.new_tenant("a", {"adm": "admin"})
    os.symlink(theirs, tmp_path / "alias")
    before = snapshot(home)

    def add(path: Path | str, *, as_user: str | None = "adm", **extra: Any) -> tuple[int, Any]:
        return home.raw("POST", "/v1/projects", {"path": str(path), **extra}, tenant=a, as_user=as_user)

    for path in (theirs, theirs / "sub", tmp_path, tmp_path / "alias"):
        status, body = add(path)
        assert status == 409 and "another tenant registered" in body["error"]["message"], (path, body)
        assert b not in body["error"]["message"]  # the other tenant is not named
    # Only a system owner may allow sharing.
    denied(add(theirs, shared=True), "tenant.manage")
    refused = 1
    for path in ("/etc", "/etc/ssh", "/", "/proc/self", home.dir, home.dir / "tenants"):
        status, body = add(path)
        assert status in (400, 403), (path, body)  # 400: no such folder on this machine
        if status == 403:
            refused += 1
            assert "cannot be a project" in body["error"]["message"], body
    restart_unchanged(home, before)
    status, body = add(theirs, as_user=None, shared=True, name="shared")
    assert status == 201, body
    (ev,) = home.audit(a, action="project.add", outcome="success")
    assert ev["details"] == {"path": str(theirs), "shared": True}
    # The refusals before it are all on record.
    assert len(home.audit(a, action="project.add", outcome="denied")) == refused >= 4


def test_a_project_is_stored_resolved(eng: Home, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    t = eng.new_tenant("res")
    res = eng.client(t).post("/v1/projects", {"path": str(tmp_path / "link")})
    assert res["name"] == "link" and res["path"] == str(real)
    (ev,) = eng.audit(t, action="project.add")
    assert ev["details"] == {"path": str(real), "given_path": str(tmp_path / "link")}
    # The same folder under another name is the same project.
    status, body = eng.raw("POST", "/v1/projects", {"path": str(real), "name": unique("again")}, tenant=t)
    assert status == 409 and "already registered" in body["error"]["message"]


@pytest.mark.parametrize("path", [1, ["/tmp"], None])
def test_project_path_of_the_wrong_type_is_a_bad_request(eng: Home, path: Any) -> None:
    t = eng.new_tenant("bt")
    status, body = eng.raw("POST", "/v1/projects", {"path": path}, tenant=t)
    assert status == 400 and body["error"]["field"] == "path", body
