"""Azure DevOps: JSON Patch work items, WIQL + batch, sync, 203 sign-in page, throttling, pipelines."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.ado import AdoConnector
from connectors.http import AuthError, RateLimitedError, TooManyItems, ValidationError
from core.integrations.sync import sync
from tests.connectors.fakes_fixtures import fast_policy, spec_repo
from tests.fakes.ado import SIGN_IN, AdoFake


@pytest.fixture
async def ado() -> AsyncIterator[AdoFake]:
    async with AdoFake() as fake:
        yield fake


def connector(fake: AdoFake, token: str | None = None, **settings: Any) -> AdoConnector:
    conf = {"org_url": f"{fake.url}/{fake.org}", "project": fake.project, "pipeline_id": "7", **settings}
    return AdoConnector(conf, {"token": token or fake.pat}, policy=fast_policy(pace_on_success=True), timeout_s=2.0)


async def test_sync_creates_features_and_stories_with_parent_relations(ado: AdoFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = connector(ado)
    try:
        first = await sync(conn, root, ado.project)
        ado.edit(302, **{"System.State": "Active"})
        second = await sync(conn, root, ado.project)
    finally:
        await conn.close()
    assert [c["key"] for c in first["created"]] == ["300", "301", "302", "303"]
    feature, story = ado.items[300], ado.items[302]
    assert feature["fields"]["System.WorkItemType"] == "Feature"
    assert story["fields"]["System.WorkItemType"] == "User Story" and story["fields"]["System.Parent"] == 300
    assert "musubi:TASK-AUTH-001" in story["fields"]["System.Tags"]
    creates = [r for r in ado.requests if r.method == "POST" and "/wit/workitems/" in r.path]
    assert {r.headers["Content-Type"] for r in creates} == {"application/json-patch+json"}
    assert all(r.query.get("api-version") == "7.1" for r in ado.requests)
    assert all(r.headers.get("X-TFS-FedAuthRedirect") == "Suppress" for r in ado.requests)
    assert base64.b64decode(creates[0].headers["Authorization"][6:]).decode() == f":{ado.pat}"  # empty user
    assert second["unchanged"] == 4 and second["status_changed"][0]["to"] == "Active"


async def test_local_edit_updates_with_a_rev_test(ado: AdoFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = connector(ado)
    try:
        await sync(conn, root, ado.project)
        spec = root / "storage/specs/auth.md"
        spec.write_text(spec.read_text().replace("Logout", "Sign out"))
        report = await sync(conn, root, ado.project)
    finally:
        await conn.close()
    assert [u["artefact"] for u in report["updated"]] == ["REQ-AUTH-002"]
    patch = next(r for r in ado.requests if r.method == "PATCH")
    assert patch.json()[0] == {"op": "test", "path": "/rev", "value": 1}
    assert ado.items[301]["fields"]["System.Title"] == "Sign out" and ado.items[301]["rev"] == 2


async def test_rev_mismatch_is_refused_not_overwritten(ado: AdoFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = connector(ado)
    try:
        await sync(conn, root, ado.project)
        items = {r.artefact: r for r in await conn.list_managed(ado.project, 100)}
        ado.edit(301, **{"System.State": "Active"})  # saved by someone after our read
        from core.integrations.contracts import WorkItem

        with pytest.raises(Exception, match="TF26071"):
            await conn.update(ado.project, items["REQ-AUTH-002"], WorkItem("REQ-AUTH-002", "requirement", "X", ""),
                              None)
    finally:
        await conn.close()
    assert ado.items[301]["fields"]["System.Title"] == "Logout"


async def test_bad_pat_is_a_clear_auth_failure_both_ways(ado: AdoFake) -> None:
    conn = connector(ado, token="not-the-PAT-value")
    try:
        with pytest.raises(AuthError, match="TF400813") as err:  # with Suppress: the 401
            await conn.test()
        ado.fail(203, body=SIGN_IN, content_type="text/html")  # an endpoint that ignores Suppress
        good = connector(ado)
        try:
            with pytest.raises(AuthError, match="sign-in page") as page:
                await good.test()
        finally:
            await good.close()
    finally:
        await conn.close()
    assert "not-the-PAT-value" not in err.value.message + page.value.message
    assert base64.b64encode(b":not-the-PAT-value").decode() not in err.value.message


async def test_missing_content_type_and_api_version_quirks(ado: AdoFake) -> None:
    conn = connector(ado)
    try:
        with pytest.raises(ValidationError, match="application/json-patch\\+json"):
            await conn.http.request("POST", f"/{ado.project}/_apis/wit/workitems/%24Task",
                                    params={"api-version": "7.1"}, json=[])
        with pytest.raises(ValidationError, match="No api-version"):
            await conn.http.request("GET", f"/_apis/projects/{ado.project}")
    finally:
        await conn.close()


async def test_throttling_hard_is_retried_and_soft_slows_the_next_call(ado: AdoFake) -> None:
    ado.throttle_hard(times=2)
    conn = connector(ado)
    try:
        await conn.test()
        assert ado.count("GET", "/_apis/projects/") == 3
        ado.throttle_hard(times=20)
        with pytest.raises(RateLimitedError, match="TF400733"):
            await conn.test()
        ado.faults.clear()
        slept: list[float] = []

        async def record(s: float) -> None:
            slept.append(s)

        conn.http._sleep = record  # the pacing wait, observed instead of slept
        ado.throttle_soft("2", times=1)
        await conn.test()  # answered 200 with Retry-After: 2
        assert slept == []
        await conn.test()  # waits before going out
    finally:
        await conn.close()
    assert len(slept) == 1 and 1.0 < slept[0] <= 2.0


async def test_max_items_guard_and_batches_of_200(ado: AdoFake) -> None:
    for n in range(450):
        ado.items[1000 + n] = {"id": 1000 + n, "rev": 1, "fields": {
            "System.Title": f"t{n}", "System.Tags": f"musubi; musubi:REQ-{n}; musubi-fp:ab", "System.State": "New"}}
    conn = connector(ado)
    try:
        items = await conn.list_managed(ado.project, 1000)
        with pytest.raises(TooManyItems):
            await conn.list_managed(ado.project, 100)
    finally:
        await conn.close()
    assert len(items) == 450
    assert [len(r.json()["ids"]) for r in ado.requests if r.path.endswith("workitemsbatch")] == [200, 200, 50]


async def test_pipeline_run_status_and_continuation_paging(ado: AdoFake) -> None:
    conn = connector(ado)
    try:
        for n in range(60):
            await conn.run_pipeline("7", "main" if n % 2 else "dev")
        run = await conn.run_pipeline("7", "main", {"ENV": "staging"})
        states = [(await conn.pipeline_run("7", run.id)).state for _ in range(3)]
        listed = await conn.pipeline_status(ado.project, "main")
    finally:
        await conn.close()
    assert states == ["running", "running", "success"]
    assert ado.runs[int(run.id)]["_variables"] == {"ENV": {"value": "staging", "isSecret": False}}
    assert listed[0].id == run.id and listed[0].state == "success" and len(listed) == 10
    tokens = [r.query.get("continuationToken") for r in ado.requests if r.path.endswith("/runs") and r.method == "GET"]
    assert tokens == [None, "50"]
