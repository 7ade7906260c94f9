"""The GitLab connector, `musubi sync gitlab` and the webhook receiver against the GitLab fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectors.gitlab import GitLabConnector, verify_webhook, webhook_app
from connectors.http import AuthError, RateLimitedError, TooManyItems, gitlab_rate_limit_reset
from core.integrations.sync import sync
from tests.connectors.fakes_fixtures import fast_policy, spec_repo
from tests.fakes.gitlab import GitLabFake
from tests.fakes.senders import issue_event, send_gitlab_hook


@pytest.fixture
async def gitlab() -> AsyncIterator[GitLabFake]:
    async with GitLabFake() as fake:
        yield fake


def connector(fake: GitLabFake, **settings: Any) -> GitLabConnector:
    secrets = {"token": fake.token, **settings.pop("secrets", {})}
    return GitLabConnector({"url": fake.url, "project": fake.path, **settings}, secrets, timeout_s=2.0,
                           policy=fast_policy(reset_hooks=(gitlab_rate_limit_reset,)))


async def test_sync_by_encoded_path_is_idempotent(gitlab: GitLabFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path)
    conn = connector(gitlab)
    try:
        first = await sync(conn, root, gitlab.path)
        gitlab.edit(3, state="closed")
        second = await sync(conn, root, gitlab.path)
    finally:
        await conn.close()
    assert [c["key"] for c in first["created"]] == ["#1", "#2", "#3", "#4"]
    assert gitlab.issues[3]["labels"] == ["musubi", "musubi:task"] and "Part of #1" in gitlab.issues[3]["description"]
    assert all(r.raw.startswith("/api/v4/projects/acme%2Fapp/issues") for r in gitlab.requests)  # one segment
    assert second["unchanged"] == 4 and second["status_changed"][0]["to"] == "closed"
    assert gitlab.count("POST", "/issues") == 4 and gitlab.count("PUT", "/issues") == 0


async def test_offset_paging_without_totals_and_keyset(gitlab: GitLabFake) -> None:
    gitlab.total_cap = 100  # like gitlab.com above 10,000 rows: no x-total, no rel="last"
    for n in range(1, 231):
        gitlab.issues[n] = {"id": 1000 + n, "iid": n, "title": f"t{n}", "state": "opened", "labels": ["musubi"],
                            "web_url": "u", "description": f"d\n\n<!-- musubi:id=REQ-{n} fp=ab -->"}
    conn = connector(gitlab)
    try:
        items = await conn.list_managed(gitlab.path, 1000)
        with pytest.raises(TooManyItems):
            await conn.list_managed(gitlab.path, 150)
    finally:
        await conn.close()
    assert len(items) == 230 and items[-1].artefact == "REQ-230"
    assert [r.query.get("page") for r in gitlab.requests if r.path.endswith("/issues")][:3] == [None, "2", "3"]


async def test_429_without_any_header_backs_off_then_succeeds(gitlab: GitLabFake) -> None:
    gitlab.rate_limit(times=2, with_headers=False)
    conn = connector(gitlab)
    try:
        me = await conn.test()
    finally:
        await conn.close()
    assert me["account"] == "musubi-bot" and gitlab.count("GET", "/user") == 3


async def test_429_that_never_ends_stops_at_the_cap(gitlab: GitLabFake) -> None:
    gitlab.rate_limit(times=50, with_headers=True)
    conn = connector(gitlab)
    try:
        with pytest.raises(RateLimitedError, match="requested too many times"):
            await conn.test()
    finally:
        await conn.close()
    assert gitlab.count("GET", "/user") == 5


async def test_bad_token_and_validation_errors_carry_gitlabs_text(gitlab: GitLabFake) -> None:
    bad = GitLabConnector({"url": gitlab.url, "project": gitlab.path}, {"token": "glpat-WRONGwrongWRONG"},
                          policy=fast_policy())
    conn = connector(gitlab)
    try:
        with pytest.raises(AuthError, match="401 Unauthorized") as err:
            await bad.test()
        assert "WRONGwrong" not in err.value.message
        from connectors.http import ValidationError

        with pytest.raises(ValidationError, match="can't be blank"):  # message as a dict, read all the same
            await conn.open_merge_request("feat", "main", "")
    finally:
        await bad.close()
        await conn.close()


async def test_pipelines_trigger_and_status_to_the_end(gitlab: GitLabFake) -> None:
    conn = connector(gitlab, secrets={"trigger_token": gitlab.trigger_token})
    api = connector(gitlab)
    try:
        run = await conn.run_pipeline("main", {"DEPLOY": "1"})
        assert run.state == "queued"
        trig = next(r for r in gitlab.requests if r.path.endswith("/trigger/pipeline"))
        assert b"variables%5BDEPLOY%5D=1" in trig.body
        states = [(await conn.pipeline(int(run.id))).state for _ in range(3)]
        direct = await api.run_pipeline("dev", {"X": "2"})
        listed = await api.pipeline_status(gitlab.path, "main")
    finally:
        await conn.close()
        await api.close()
    assert states == ["running", "running", "success"]
    assert gitlab.pipelines[int(direct.id)]["variables"] == [{"key": "X", "value": "2", "variable_type": "env_var"}]
    assert [r.state for r in listed] == ["success"]


async def test_a_redirected_write_is_refused_not_replayed_as_a_get(gitlab: GitLabFake) -> None:
    gitlab.fail(301, headers={"Location": f"{gitlab.url}/api/v4/projects/5/issues"}, method="POST")
    conn = connector(gitlab)
    try:
        with pytest.raises(Exception, match="301"):
            await conn.note(1, "hello")
    finally:
        await conn.close()
    assert gitlab.count("GET", "/issues") == 0


def test_verify_webhook_is_exact_and_constant_time_shaped() -> None:
    assert verify_webhook({"X-Gitlab-Token": "s3cret"}, "s3cret")
    assert not verify_webhook({"X-Gitlab-Token": "s3cre"}, "s3cret")
    assert not verify_webhook({"X-Gitlab-Token": "s3cret "}, "s3cret")
    assert not verify_webhook({}, "s3cret")
    assert not verify_webhook({"X-Gitlab-Token": ""}, "")  # no secret configured never matches


async def test_webhook_receiver_checks_token_and_dedupes_retries() -> None:
    got: list[dict[str, Any]] = []

    async def on_event(ev: dict[str, Any]) -> None:
        got.append(ev)

    runner = web.AppRunner(webhook_app("hook-secret", on_event))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/hooks/gitlab"
    try:
        assert (await send_gitlab_hook(url, "wrong", issue_event()))[0] == 401
        assert (await send_gitlab_hook(url, None, issue_event()))[0] == 401
        assert (await send_gitlab_hook(url, "hook-secret", {"no": "kind"}))[0] == 400
        status, _ = await send_gitlab_hook(url, "hook-secret", issue_event(12, "close", "closed"),
                                           idempotency_key="k-1")
        retry, body = await send_gitlab_hook(url, "hook-secret", issue_event(12, "close", "closed"),
                                             idempotency_key="k-1")
    finally:
        await runner.cleanup()
    assert status == 202 and retry == 200 and body == {"duplicate": True}
    assert len(got) == 1 and got[0]["event"] == "Issue Hook" and got[0]["payload"]["object_attributes"]["iid"] == 12
