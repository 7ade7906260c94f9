"""`musubi sync` core (core/integrations/sync.py) against the Jira fake through the real connector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.integrations.sync import sync
from core.trace.links import LinksFile
from tests.connectors.fakes_fixtures import jira_connector, spec_repo
from tests.fakes.jira import JiraFake


class Audit(list[tuple[str, str, str, dict[str, Any]]]):
    def __call__(self, action: str, obj: str, outcome: str, details: Any) -> None:
        self.append((action, obj, outcome, dict(details)))


async def test_first_sync_creates_epics_and_stories_with_parents_and_links(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    audit = Audit()
    try:
        report = await sync(conn, root, "PROJ", audit=audit, repo_url="https://git.example.com/acme/app/blob/main")
    finally:
        await conn.close()
    assert [c["artefact"] for c in report["created"]] == [
        "REQ-AUTH-001", "REQ-AUTH-002", "TASK-AUTH-001", "TASK-AUTH-002"]
    assert report["failed"] == [] and report["conflicts"] == []
    epic = jira.issues["PROJ-1"]
    assert epic.fields["issuetype"] == {"name": "Epic"}
    assert epic.fields["summary"] == "Login with password"
    assert epic.fields["description"]["type"] == "doc"  # ADF, not a string
    story = jira.issues["PROJ-3"]
    assert story.fields["issuetype"] == {"name": "Story"} and story.fields["parent"] == {"key": "PROJ-1"}
    assert jira.issues["PROJ-4"].fields["parent"] == {"key": "PROJ-2"}
    assert "musubi:TASK-AUTH-001" in story.fields["labels"]
    assert list(epic.remote_links) == ["musubi:REQ-AUTH-001"]
    lf = LinksFile.load(root)
    assert {(x.artefact, x.key, x.status) for x in lf.external} == {
        ("REQ-AUTH-001", "PROJ-1", "To Do"), ("REQ-AUTH-002", "PROJ-2", "To Do"),
        ("TASK-AUTH-001", "PROJ-3", "To Do"), ("TASK-AUTH-002", "PROJ-4", "To Do")}
    assert [(a, o, out) for a, o, out, _d in audit] == [
        ("integration.create", "jira:PROJ-1", "ok"), ("integration.create", "jira:PROJ-2", "ok"),
        ("integration.create", "jira:PROJ-3", "ok"), ("integration.create", "jira:PROJ-4", "ok")]
    assert jira.token not in repr(audit) and jira.token not in lf.path.read_text()


async def test_second_sync_changes_nothing(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        await sync(conn, root, "PROJ")
        before = (root / "storage/traceability/links.yml").read_bytes()
        writes = [r for r in jira.requests if r.method in ("PUT", "POST") and "search" not in r.path]
        audit = Audit()
        report = await sync(conn, root, "PROJ", audit=audit)
    finally:
        await conn.close()
    assert report["unchanged"] == 4 and report["created"] == report["updated"] == []
    assert report["links_changed"] is False and audit == []
    assert (root / "storage/traceability/links.yml").read_bytes() == before
    assert [r for r in jira.requests if r.method in ("PUT", "POST") and "search" not in r.path] == writes


async def test_local_edit_updates_and_remote_status_reads_back(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        await sync(conn, root, "PROJ")
        spec = root / "storage/specs/auth.md"
        spec.write_text(spec.read_text().replace("## REQ-AUTH-002: Logout", "## REQ-AUTH-002: Logout everywhere"))
        jira.move("PROJ-3", "3")  # someone started the story in Jira
        report = await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert [u["artefact"] for u in report["updated"]] == ["REQ-AUTH-002"]
    assert jira.issues["PROJ-2"].fields["summary"] == "Logout everywhere"
    assert report["status_changed"] == [{"artefact": "TASK-AUTH-001", "key": "PROJ-3", "from": "To Do",
                                         "to": "In Progress", "done": False}]
    ext = {x.artefact: x for x in LinksFile.load(root).external}
    assert ext["TASK-AUTH-001"].status == "In Progress"


async def test_both_sides_edited_is_a_conflict_never_overwritten_until_resolved(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        await sync(conn, root, "PROJ")
        spec = root / "storage/specs/auth.md"
        spec.write_text(spec.read_text().replace("Login with password", "Login with a passphrase"))
        jira.edit("PROJ-1", summary="Login (edited in Jira)")
        report = await sync(conn, root, "PROJ")
        assert [c["artefact"] for c in report["conflicts"]] == ["REQ-AUTH-001"]
        assert "--resolve REQ-AUTH-001=local" in report["conflicts"][0]["reason"]
        assert jira.issues["PROJ-1"].fields["summary"] == "Login (edited in Jira)"
        again = await sync(conn, root, "PROJ")  # still a conflict: nothing decided it
        assert [c["artefact"] for c in again["conflicts"]] == ["REQ-AUTH-001"]
        resolved = await sync(conn, root, "PROJ", resolve={"REQ-AUTH-001": "local"})
        assert [u["artefact"] for u in resolved["updated"]] == ["REQ-AUTH-001"]
        assert jira.issues["PROJ-1"].fields["summary"] == "Login with a passphrase"
        final = await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert final["conflicts"] == [] and final["unchanged"] == 4


async def test_remote_only_edit_is_kept_and_reported(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        await sync(conn, root, "PROJ")
        jira.edit("PROJ-2", summary="Logout (reworded in Jira)")
        report = await sync(conn, root, "PROJ")
        again = await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert [e["artefact"] for e in report["remote_edited"]] == ["REQ-AUTH-002"]
    assert report["updated"] == [] and jira.issues["PROJ-2"].fields["summary"] == "Logout (reworded in Jira)"
    assert again["remote_edited"] == [] and again["unchanged"] == 4


async def test_lost_links_file_adopts_instead_of_duplicating(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        await sync(conn, root, "PROJ")
        (root / "storage/traceability/links.yml").unlink()  # a crash before the save, a fresh clone
        report = await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert report["created"] == [] and len(report["adopted"]) == 4
    assert len(jira.issues) == 4
    assert len(LinksFile.load(root).external) == 4


async def test_dry_run_writes_nothing(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    try:
        report = await sync(conn, root, "PROJ", dry_run=True)
    finally:
        await conn.close()
    assert report["planned"] == {"create": 4} and jira.issues == {}
    assert not (root / "storage/traceability/links.yml").exists()


async def test_bad_token_stops_the_sync_with_jiras_text_and_audits_it(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    from connectors.http import AuthError
    from connectors.jira import JiraConnector

    conn = JiraConnector({"url": jira.url, "email": jira.email}, {"token": "wrong-token-VALUE"})
    try:
        with pytest.raises(AuthError) as err:
            await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert "Client must be authenticated" in err.value.message and "401" in err.value.message
    assert "wrong-token-VALUE" not in err.value.message
    assert jira.issues == {}


async def test_a_refused_item_is_reported_and_the_rest_goes_on(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    jira.fail(400, body={"errorMessages": [], "errors": {"summary": "Summary is too long."}}, path="/issue",
              method="POST")
    audit = Audit()
    try:
        report = await sync(conn, root, "PROJ", audit=audit)
    finally:
        await conn.close()
    assert [f["artefact"] for f in report["failed"]] == ["REQ-AUTH-001"]
    assert report["failed"][0]["kind"] == "validation" and "Summary is too long" in report["failed"][0]["message"]
    assert audit[0][:3] == ("integration.create", "jira:PROJ", "failed")
    # The task of the failed epic is created without a parent rather than pointing at nothing.
    assert len(jira.issues) == 3
    ext = {x.artefact for x in LinksFile.load(root).external}
    assert "REQ-AUTH-001" not in ext and "TASK-AUTH-001" in ext


async def test_a_sync_stopped_half_way_keeps_its_records_and_the_next_one_finishes(jira: JiraFake,
                                                                                 tmp_path: Path) -> None:
    from connectors.http import AuthError

    root = spec_repo(tmp_path)
    conn = jira_connector(jira)
    real_create = conn.create
    calls = 0

    async def create(project: str, item: Any, parent_key: str | None) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise AuthError("jira: token revoked", connector="jira", status=401)
        return await real_create(project, item, parent_key)

    conn.create = create  # type: ignore[method-assign]
    try:
        with pytest.raises(AuthError):
            await sync(conn, root, "PROJ")
        assert {x.artefact for x in LinksFile.load(root).external} == {"REQ-AUTH-001", "REQ-AUTH-002"}
        conn.create = real_create  # type: ignore[method-assign]
        report = await sync(conn, root, "PROJ")
    finally:
        await conn.close()
    assert [c["artefact"] for c in report["created"]] == ["TASK-AUTH-001", "TASK-AUTH-002"]
    assert report["unchanged"] == 2 and len(jira.issues) == 4
