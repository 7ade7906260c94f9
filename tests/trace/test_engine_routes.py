"""Trace routes against a real engine on a short temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import BadRequest, NotFound, PermissionDenied
from core.trace.matrix import build
from core.trace.scanner import scan
from tests.engine.helpers import Home, unique
from tests.trace.fixture import build_repo


@pytest.fixture
def world(eng: Home, tmp_path: Path) -> tuple[Home, str, Path]:
    repo = build_repo(tmp_path / "repo")
    tenant = eng.new_tenant("tr", {"vic-viewer": "viewer", "mia-member": "member"})
    eng.client(tenant).post("/v1/projects", {"path": str(repo), "name": unique("p")})
    return eng, tenant, repo


def test_report_of_the_project_of_the_working_directory(world: tuple[Home, str, Path]) -> None:
    h, tenant, repo = world
    c = h.client(tenant, as_user="vic-viewer", cwd=str(repo / "src"))
    rep = c.get("/v1/trace")
    assert rep["root"] == str(repo)
    local = build(scan(repo)).to_json()
    assert rep["requirements"] == local["requirements"]
    assert rep["summary"] == local["summary"]
    s = c.get("/v1/trace", {"view": "summary"})
    assert s["summary"]["grade"] == "D" and s["scan"]["read"] == 0  # warm: nothing re-read
    # The per-file cache lives in the tenant's folder of the engine home.
    assert list((h.paths.tenant_dir(tenant) / "trace").glob("*.json"))


def test_read_views(world: tuple[Home, str, Path]) -> None:
    h, tenant, repo = world
    c = h.client(tenant, as_user="vic-viewer", cwd=str(repo))
    show = c.get("/v1/trace/requirements/REQ-BILL-002")
    assert show["links"]["code"][0]["path"] == "src/latin1.c"
    assert [f["rule"] for f in show["findings"]] == ["req.no-acceptance-criteria"]
    imp = c.get("/v1/trace/impact/REQ-AUTH-001")
    assert [t["target"] for t in imp["tasks"]] == ["TASK-001", "TASK-AUTH-001"]
    gaps = c.get("/v1/trace/gaps")
    assert [d["id"] for d in gaps["dangling"]] == ["REQ-NOPE-001", "TASK-999", "REQ-AUTH-999"]
    exp = c.get("/v1/trace/export", {"format": "csv"})
    assert exp["content"].splitlines()[0].startswith("id,title,priority")
    lint = c.get("/v1/spec/lint")
    assert (lint["errors"], lint["warnings"], lint["requirements"]) == (1, 1, 7)
    with pytest.raises(NotFound, match="REQ-AUTH-001"):
        c.get("/v1/trace/requirements/REQ-AUTH-01")
    with pytest.raises(BadRequest, match="unknown export format"):
        c.get("/v1/trace/export", {"format": "pdf"})


def test_review_needs_specs_write_and_is_audited(world: tuple[Home, str, Path]) -> None:
    h, tenant, repo = world
    links = repo / "storage/traceability/links.yml"
    viewer = h.client(tenant, as_user="vic-viewer", cwd=str(repo))
    with pytest.raises(PermissionDenied, match="specs.write"):
        viewer.post("/v1/trace/review", {"id": "REQ-AUTH-001"})
    assert not links.exists()
    assert h.audit(tenant, action="trace.review", outcome="denied")
    member = h.client(tenant, as_user="mia-member", cwd=str(repo))
    r = member.post("/v1/trace/review", {"id": "REQ-AUTH-001"})
    assert r["by"] == "mia-member"
    assert yaml.safe_load(links.read_text())["reviews"]["REQ-AUTH-001"]["by"] == "mia-member"
    ev = h.audit(tenant, action="trace.review", outcome="success")
    assert ev and ev[-1]["actor"] == "mia-member" and ev[-1]["resource"] == "requirement:REQ-AUTH-001"
    acc = member.post("/v1/trace/links", {"requirement": "REQ-CRLF-001", "kind": "code", "target": "src/crlf.py", "line": 1})
    assert acc["state"] == "accepted"
    assert member.get("/v1/trace/requirements/REQ-CRLF-001")["shallow"]["code"] is True
    with pytest.raises(BadRequest, match="link kind"):
        member.post("/v1/trace/links", {"requirement": "REQ-CRLF-001", "kind": "nope", "target": "src/crlf.py"})
    member.post("/v1/trace/links/remove", {"requirement": "REQ-CRLF-001", "kind": "code", "target": "src/crlf.py", "line": 1})
    assert member.get("/v1/trace/requirements/REQ-CRLF-001")["shallow"]["code"] is False


def test_which_repository(world: tuple[Home, str, Path], tmp_path: Path) -> None:
    h, tenant, repo = world
    other = build_repo(tmp_path / "other", git=False)
    # The engine's own OS user may trace any path it can read...
    assert h.client(tenant).get("/v1/trace", {"path": str(other), "view": "summary"})["summary"]["requirements"] == 7
    # ...another user only registered projects.
    viewer = h.client(tenant, as_user="vic-viewer")
    with pytest.raises(PermissionDenied, match="not inside a registered project"):
        viewer.get("/v1/trace", {"path": str(other)})
    assert viewer.get("/v1/trace", {"path": str(repo / "src"), "view": "summary"})["root"] == str(repo / "src")
    with pytest.raises(BadRequest, match="no repository given"):
        viewer.get("/v1/trace")
    with pytest.raises(BadRequest, match="must be absolute"):
        viewer.get("/v1/trace", {"path": "relative/dir"})
    with pytest.raises(BadRequest, match="not an existing directory"):
        h.client(tenant).get("/v1/trace", {"path": str(tmp_path / "missing")})


def test_outsider_is_refused(world: tuple[Home, str, Path]) -> None:
    h, tenant, repo = world
    with pytest.raises(PermissionDenied, match="no role in tenant"):
        h.client(tenant, as_user="nobody-here", cwd=str(repo)).get("/v1/trace")


def test_suspended_tenant_keeps_admin_reads_refuses_writes(world: tuple[Home, str, Path]) -> None:
    h, tenant, repo = world
    owner = h.client(tenant, cwd=str(repo))
    h.client("default").post(f"/v1/tenants/{tenant}/suspend", {"reason": "test"})
    try:
        assert owner.get("/v1/trace", {"view": "summary"})["summary"]["requirements"] == 7
        with pytest.raises(PermissionDenied, match="suspended"):
            h.client(tenant, as_user="vic-viewer", cwd=str(repo)).get("/v1/trace")
        with pytest.raises(PermissionDenied, match="suspended"):
            owner.post("/v1/trace/review", {"id": "REQ-AUTH-001"})
        assert not (repo / "storage/traceability/links.yml").exists()
    finally:
        h.client("default").post(f"/v1/tenants/{tenant}/resume", {})
