"""The GitHub connector and `musubi sync github` against the GitHub fake."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.github import GitHubConnector
from connectors.http import AuthError, RateLimitedError, ValidationError
from core.integrations.sync import sync
from core.trace.links import LinksFile
from tests.connectors.fakes_fixtures import fast_policy, github_connector, spec_repo
from tests.fakes.github import GitHubFake


async def test_sync_creates_issues_marks_them_and_is_idempotent(github: GitHubFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = github_connector(github)
    try:
        first = await sync(conn, root, github.repo)
        second = await sync(conn, root, github.repo)
    finally:
        await conn.close()
    assert [c["key"] for c in first["created"]] == ["#1", "#2", "#3", "#4"]
    task = github.issues[3]
    assert task["labels"] == ["musubi", "musubi:task"] and "Part of #1" in task["body"]
    assert task["body"].rstrip().endswith("-->") and "musubi:id=TASK-AUTH-001" in task["body"]
    assert second["unchanged"] == 4 and second["links_changed"] is False
    assert github.count("POST", "/issues") == 4 and github.count("PATCH", "/issues") == 0
    assert all(r.headers.get("X-GitHub-Api-Version") == "2022-11-28" for r in github.requests)


async def test_closed_issue_reads_back_as_done(github: GitHubFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = github_connector(github)
    try:
        await sync(conn, root, github.repo)
        github.edit(4, state="closed", state_reason="completed")
        report = await sync(conn, root, github.repo)
    finally:
        await conn.close()
    assert report["status_changed"] == [{"artefact": "TASK-AUTH-002", "key": "#4", "from": "open",
                                         "to": "closed (completed)", "done": True}]
    assert {x.artefact: x.done for x in LinksFile.load(root).external}["TASK-AUTH-002"] is True


async def test_link_paging_skips_pull_requests(github: GitHubFake) -> None:
    for n in range(1, 251):
        github.issues[n] = {"id": n, "number": n, "title": f"t{n}", "state": "open", "state_reason": None,
                            "labels": ["musubi"], "html_url": f"https://github.com/acme/app/issues/{n}",
                            "body": f"x\n\n<!-- musubi:id=REQ-{n} fp=ab -->"}
    github.issues[7]["pull_request"] = {"url": "x"}
    conn = github_connector(github)
    try:
        items = await conn.list_managed(github.repo, 1000)
    finally:
        await conn.close()
    assert len(items) == 249 and "REQ-7" not in {i.artefact for i in items}
    pages = [r.query.get("page") for r in github.requests if r.path.endswith("/issues")]
    assert pages == [None, "2", "3"]


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_rate_limit_is_waited_for_and_retried(github: GitHubFake, status: int) -> None:
    github.secondary_limit(times=2, retry_after="0", status=status)
    conn = github_connector(github)
    try:
        me = await conn.test()
    finally:
        await conn.close()
    assert me["account"] == "musubi-bot"
    assert github.count("GET", "/user") == 3


async def test_exhausted_primary_limit_waits_for_the_reset(github: GitHubFake) -> None:
    github.primary_exhausted(reset_in=0)
    conn = github_connector(github)
    try:
        await conn.test()
    finally:
        await conn.close()
    assert github.count("GET", "/user") == 2


async def test_secondary_limit_on_a_post_is_retried_since_github_refused_it(github: GitHubFake,
                                                                           tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    github.secondary_limit(times=1, retry_after="0")
    conn = github_connector(github)
    try:
        report = await sync(conn, root, github.repo, include=("requirement",))
    finally:
        await conn.close()
    assert len(report["created"]) == 2 and len(github.issues) == 2


async def test_a_limit_that_never_lifts_ends_with_rate_limited(github: GitHubFake) -> None:
    github.secondary_limit(times=20, retry_after="0")
    conn = github_connector(github)
    try:
        with pytest.raises(RateLimitedError, match="secondary rate limit"):
            await conn.test()
    finally:
        await conn.close()
    assert github.count("GET", "/user") == 5


async def test_a_plain_403_is_an_auth_failure_not_retried(github: GitHubFake) -> None:
    github.fail(403, body={"message": "Resource not accessible by personal access token"},
                headers={"x-ratelimit-remaining": "4000", "x-ratelimit-reset": str(int(time.time()) + 60)})
    conn = github_connector(github)
    try:
        with pytest.raises(AuthError, match="Resource not accessible"):
            await conn.test()
    finally:
        await conn.close()
    assert github.count("GET", "/user") == 1


async def test_bad_token_names_githubs_text_and_hides_the_token(github: GitHubFake) -> None:
    conn = GitHubConnector({"api_url": github.url, "repo": github.repo}, {"token": "github_pat_WRONGwrongWRONG1234"},
                           policy=fast_policy())
    try:
        with pytest.raises(AuthError) as err:
            await conn.test()
    finally:
        await conn.close()
    assert "Bad credentials" in err.value.message and "request id C0DE:" in err.value.message
    assert "WRONGwrong" not in err.value.message + repr(err.value)


async def test_unknown_api_version_is_the_vendors_text(github: GitHubFake) -> None:
    conn = github_connector(github, api_version="1999-01-01")
    try:
        with pytest.raises(ValidationError, match="1999-01-01' is not supported"):
            await conn.test()
    finally:
        await conn.close()


async def test_pipeline_status_normalises_actions_runs(github: GitHubFake) -> None:
    github.add_run("main", "completed", "failure", name="CI")
    github.add_run("main", "in_progress", name="Deploy")
    github.add_run("other", "completed", "success")
    conn = github_connector(github)
    try:
        runs = await conn.pipeline_status(github.repo, "main")
        await conn.dispatch("ci.yml", "main")
        pr = await conn.open_pull_request("Add login", "feat/login", "main")
        prs = await conn.pull_requests()
    finally:
        await conn.close()
    assert [(r.name, r.state) for r in runs] == [("Deploy", "running"), ("CI", "failed")]
    assert github.dispatches == [{"workflow": "ci.yml", "ref": "main", "inputs": {}}]
    assert prs == [{"number": pr["number"], "title": "Add login", "state": "open", "url": pr["url"],
                    "head": "feat/login"}]
