"""The Jira connector against the Jira fake: paging, retries and their limits, quirks, auth, redaction."""

from __future__ import annotations

import logging

import pytest

from connectors.http import AuthError, RateLimitedError, TooManyItems, UpstreamError
from connectors.jira import JiraConnector, adf, adf_text
from core.integrations.contracts import IntegrationError, WorkItem
from tests.connectors.fakes_fixtures import fast_policy, jira_connector
from tests.fakes.jira import REMOVED, Issue, JiraFake


def _seed(fake: JiraFake, n: int, label: str = "musubi") -> None:
    for i in range(1, n + 1):
        fake.issues[f"PROJ-{i}"] = Issue(str(20000 + i), f"PROJ-{i}", {
            "summary": f"item {i}", "labels": [label, f"musubi:REQ-X-{i:03d}", "musubi-fp:abc"],
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "issuetype": {"name": "Story"}})


async def test_search_pages_across_three_pages(jira: JiraFake) -> None:
    _seed(jira, 250)
    conn = jira_connector(jira)
    try:
        items = await conn.list_managed("PROJ", 1000)
    finally:
        await conn.close()
    assert len(items) == 250 and items[0].artefact == "REQ-X-001" and items[-1].key == "PROJ-250"
    searches = [r for r in jira.requests if r.path.endswith("/search/jql")]
    assert [r.json().get("nextPageToken") for r in searches] == [None, "p100", "p200"]
    assert all(r.json()["fields"] for r in searches)  # ids-only unless fields are asked for


async def test_max_items_guard_stops_a_runaway_listing(jira: JiraFake) -> None:
    _seed(jira, 250)
    conn = jira_connector(jira)
    try:
        with pytest.raises(TooManyItems):
            await conn.list_managed("PROJ", 150)
    finally:
        await conn.close()
    assert sum(1 for r in jira.requests if r.path.endswith("/search/jql")) == 2  # stopped, not read to the end


async def test_429_is_retried_after_retry_after_then_succeeds(jira: JiraFake) -> None:
    _seed(jira, 2)
    jira.fail(429, headers={"Retry-After": "0", "X-RateLimit-Reset": "2026-01-01T00:00Z",
                            "RateLimit-Reason": "jira-quota-based"},
              body={"errorMessages": ["Rate limit exceeded"], "errors": {}}, times=2)
    conn = jira_connector(jira)
    try:
        items = await conn.list_managed("PROJ", 100)
    finally:
        await conn.close()
    assert len(items) == 2
    assert sum(1 for r in jira.requests if r.path.endswith("/search/jql")) == 3


async def test_retries_have_a_limit(jira: JiraFake) -> None:
    jira.fail(429, headers={"Retry-After": "0"}, body={"errorMessages": ["Rate limit exceeded"], "errors": {}},
              times=50)
    conn = jira_connector(jira)
    try:
        with pytest.raises(RateLimitedError) as err:
            await conn.list_managed("PROJ", 100)
    finally:
        await conn.close()
    assert "Rate limit exceeded" in err.value.message
    assert sum(1 for r in jira.requests if r.path.endswith("/search/jql")) == 5  # the policy's max_attempts


async def test_create_is_not_retried_blindly_after_a_500(jira: JiraFake) -> None:
    jira.fail(500, body={"errorMessages": ["Internal server error"], "errors": {}}, path="/issue", method="POST")
    conn = jira_connector(jira)
    item = WorkItem("REQ-A-001", "requirement", "Title", "Body")
    try:
        with pytest.raises(UpstreamError) as err:
            await conn.create("PROJ", item, None)
    finally:
        await conn.close()
    assert getattr(err.value, "status", None) == 500
    assert jira.count("POST", "/issue") == 1 and jira.issues == {}


async def test_removed_search_gets_a_clear_message(jira: JiraFake) -> None:
    conn = jira_connector(jira)
    try:
        with pytest.raises(IntegrationError) as err:
            await conn._call("GET", "/rest/api/3/search", params={"jql": "project = PROJ"})
    finally:
        await conn.close()
    assert err.value.status == 410 and "CHANGE-2046" in err.value.message and "/search/jql" in err.value.message
    assert REMOVED[:40] in err.value.message


async def test_empty_jql_is_refused_before_any_call(jira: JiraFake) -> None:
    conn = jira_connector(jira)
    try:
        with pytest.raises(IntegrationError, match="empty JQL"):
            await conn.search("  ", ["summary"], 10)
    finally:
        await conn.close()
    assert jira.requests == []


async def test_oauth_bearer_uses_the_cloud_base(jira: JiraFake) -> None:
    conn = JiraConnector({"auth": "oauth", "cloud_id": jira.cloud_id, "api_url": jira.url, "url": jira.url},
                         {"token": jira.oauth}, policy=fast_policy())
    try:
        me = await conn.test()
    finally:
        await conn.close()
    assert me["account"] == "Musubi Bot"
    assert jira.requests[0].path == f"/ex/jira/{jira.cloud_id}/rest/api/3/myself"
    assert jira.requests[0].headers["Authorization"] == f"Bearer {jira.oauth}"


async def test_bad_credentials_say_so_without_the_token(jira: JiraFake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    conn = JiraConnector({"url": jira.url, "email": jira.email}, {"token": "not-the-TOKEN-123"}, policy=fast_policy())
    try:
        with pytest.raises(AuthError) as err:
            await conn.test()
    finally:
        await conn.close()
    text = err.value.message + repr(err.value) + caplog.text
    assert "Client must be authenticated" in err.value.message
    assert "not-the-TOKEN-123" not in text
    import base64

    assert base64.b64encode(f"{jira.email}:not-the-TOKEN-123".encode()).decode() not in text


async def test_missing_settings_name_the_fix() -> None:
    with pytest.raises(IntegrationError, match="musubi integrations set jira email="):
        JiraConnector({"url": "https://x.atlassian.net"}, {"token": "t0ken"})
    with pytest.raises(IntegrationError, match="--secret token"):
        JiraConnector({"url": "https://x.atlassian.net", "email": "a@b"}, {})
    with pytest.raises(IntegrationError, match="auth must be"):
        JiraConnector({"auth": "password", "url": "https://x"}, {"token": "t0ken"})


async def test_transition_comment_and_remote_link_upsert(jira: JiraFake) -> None:
    conn = jira_connector(jira)
    try:
        made = await conn.create("PROJ", WorkItem("REQ-A-001", "requirement", "T", "Body"), None)
        assert made.status == "To Do"
        await conn.transition(made.key, "In Progress")
        with pytest.raises(IntegrationError, match="available now: Done, To Do"):
            await conn.transition(made.key, "Shipped")
        c = await conn.comment(made.key, "Run 42 finished")
        first = await conn.remote_link(made.key, "https://ci/1", "run", "musubi:run:42")
        second = await conn.remote_link(made.key, "https://ci/2", "run", "musubi:run:42")
        again = await conn.get(made.key)
    finally:
        await conn.close()
    assert again.status == "In Progress" and not again.done
    assert adf_text(c["body"]) == "Run 42 finished"
    assert first["id"] == second["id"]  # updated, not duplicated
    links = jira.issues[made.key].remote_links
    assert list(links) == ["musubi:run:42"] and links["musubi:run:42"]["object"]["url"] == "https://ci/2"


def test_adf_renders_paragraphs_bullets_and_the_spec_link() -> None:
    doc = adf("Statement.\nAcceptance criteria:\n- one\n- two", "storage/specs/a.md:3", "https://git/x#L3")
    assert [c["type"] for c in doc["content"]] == ["paragraph", "paragraph", "bulletList", "paragraph"]
    assert doc["content"][3]["content"][1]["marks"][0]["attrs"]["href"] == "https://git/x#L3"
