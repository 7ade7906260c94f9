"""The connector HTTP layer against a scripted aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import logging

import pytest

from connectors.http import (
    MASK,
    AuthError,
    ConnectionFailed,
    HttpClient,
    HttpError,
    NotFoundError,
    Page,
    RateLimitedError,
    RequestTimeout,
    RetryPolicy,
    TooManyItems,
    UpstreamError,
    ValidationError,
    gitlab_rate_limit_reset,
    jira_rate_limit_reset,
    paginate,
    retry_after,
)
from core.errors import MusubiError
from tests.connectors.scripted_server import Reply, ScriptedServer

SECRET = "tok-SUPERSECRET-123456"


class Sleeps:
    """Records the waits instead of sleeping them (the retry mechanics are what is tested)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(server: ScriptedServer, sleeps: Sleeps | None = None, **kw: object) -> HttpClient:
    policy = kw.pop("policy", RetryPolicy(base_s=0.01))
    return HttpClient("vendor", server.url, sleep=sleeps or Sleeps(), policy=policy, **kw)  # type: ignore[arg-type]


async def test_get_json_pooled_session_and_request_id(server: ScriptedServer) -> None:
    server.script("/a", Reply(json={"x": 1}, headers={"X-Request-Id": "req_1"}))
    http = client(server)
    first = await http.request("GET", "/a")
    session = http._session
    second = await http.request("GET", "a")
    assert first.json() == {"x": 1} and first.request_id == "req_1" and second.status == 200
    assert http._session is session  # one pooled session for the connector
    await http.aclose()
    assert session is not None and session.closed
    await http.aclose()  # idempotent


async def test_429_retry_after_seconds_then_success(server: ScriptedServer) -> None:
    server.script("/r", Reply(429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "2"}),
                  Reply(json={"ok": True}))
    sleeps = Sleeps()
    http = client(server, sleeps)
    answer = await http.request("GET", "/r")
    assert answer.json() == {"ok": True}
    assert sleeps.waits == [2.0] and len(server.seen["/r"]) == 2
    await http.aclose()


async def test_retry_after_http_date_and_ms() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after({"Retry-After": date}, now) == pytest.approx(7.0)
    assert retry_after({"retry-after-ms": "250", "Retry-After": "9"}, now) == pytest.approx(0.25)
    assert retry_after({"Retry-After": "nonsense"}, now) is None
    assert retry_after({}, now) is None


async def test_vendor_reset_hooks() -> None:
    from datetime import UTC, datetime
    now = datetime(2026, 1, 1, 0, 0, tzinfo=UTC).timestamp() - 3
    assert jira_rate_limit_reset({"X-RateLimit-Reset": "2026-01-01T00:00Z"}, now) == pytest.approx(3.0)
    assert gitlab_rate_limit_reset({"RateLimit-Reset": str(int(now) + 5)}, now) == pytest.approx(5.0)
    assert jira_rate_limit_reset({"X-RateLimit-Reset": "garbage"}, now) is None
    # Retry-After wins over a vendor hook; the hook is used when Retry-After is missing
    policy = RetryPolicy(reset_hooks=(jira_rate_limit_reset,), clock=lambda: now)
    assert policy.server_delay({"Retry-After": "1", "X-RateLimit-Reset": "2026-01-01T00:00Z"}) == 1.0
    assert policy.server_delay({"X-RateLimit-Reset": "2026-01-01T00:00Z"}) == pytest.approx(3.0)


async def test_gitlab_epoch_reset_drives_the_wait(server: ScriptedServer) -> None:
    import time
    reset = str(int(time.time()) + 4)
    server.script("/g", Reply(429, json={"message": "429 Too Many Requests"}, headers={"RateLimit-Reset": reset}),
                  Reply(json=[]))
    sleeps = Sleeps()
    http = client(server, sleeps, policy=RetryPolicy(base_s=0.01, reset_hooks=(gitlab_rate_limit_reset,)))
    await http.request("GET", "/g")
    assert len(sleeps.waits) == 1 and 2.0 <= sleeps.waits[0] <= 4.0
    await http.aclose()


async def test_5xx_retried_until_max_attempts_then_typed_error(server: ScriptedServer) -> None:
    server.script("/u", Reply(503, json={"error": {"message": "overloaded"}}, headers={"x-ms-request-id": "ms-9"}))
    sleeps = Sleeps()
    http = client(server, sleeps, policy=RetryPolicy(max_attempts=3, base_s=0.5))
    with pytest.raises(UpstreamError) as info:
        await http.request("GET", "/u")
    err = info.value
    assert err.status == 503 and err.request_id == "ms-9" and "overloaded" in str(err)
    assert len(server.seen["/u"]) == 3 and len(sleeps.waits) == 2
    # full jitter: each wait within [0, base * 2**n]
    assert 0 <= sleeps.waits[0] <= 0.5 and 0 <= sleeps.waits[1] <= 1.0
    assert isinstance(err, MusubiError) and err.to_dict()["request_id"] == "ms-9"
    await http.aclose()


async def test_post_not_retried_blindly_but_idempotent_post_is(server: ScriptedServer) -> None:
    server.script("/p", Reply(500, json={"message": "boom"}))
    http = client(server)
    with pytest.raises(UpstreamError):
        await http.request("POST", "/p", json={"a": 1})
    assert len(server.seen["/p"]) == 1  # a POST the vendor may have acted on is sent once
    with pytest.raises(UpstreamError):
        await http.request("POST", "/p", json={"a": 1}, idempotent=True)
    assert len(server.seen["/p"]) == 1 + 5
    await http.aclose()


async def test_post_retried_on_429_and_on_503_with_retry_after(server: ScriptedServer) -> None:
    server.script("/p", Reply(429, json={}, headers={"Retry-After": "0"}),
                  Reply(503, json={}, headers={"Retry-After": "1"}), Reply(201, json={"id": 7}))
    http = client(server)
    answer = await http.request("POST", "/p", json={})
    assert answer.status == 201 and len(server.seen["/p"]) == 3
    await http.aclose()


async def test_server_delay_above_cap_is_not_waited(server: ScriptedServer) -> None:
    server.script("/c", Reply(429, json={"errorMessages": ["Rate limit exceeded"], "errors": {}},
                              headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    http = client(server, sleeps)
    with pytest.raises(RateLimitedError) as info:
        await http.request("GET", "/c")
    assert info.value.retry_after_s == 3600 and sleeps.waits == [] and len(server.seen["/c"]) == 1
    assert "Rate limit exceeded" in str(info.value)
    await http.aclose()


async def test_total_wait_cap(server: ScriptedServer) -> None:
    server.script("/t", Reply(429, json={}, headers={"Retry-After": "40"}))
    sleeps = Sleeps()
    http = client(server, sleeps, policy=RetryPolicy(max_attempts=10, max_total_wait_s=100))
    with pytest.raises(RateLimitedError):
        await http.request("GET", "/t")
    assert sleeps.waits == [40.0, 40.0]  # a third wait would pass 100 s in all
    await http.aclose()


async def test_retry_after_on_a_success_paces_the_next_call(server: ScriptedServer) -> None:
    server.script("/ado", Reply(json={"value": []}, headers={"Retry-After": "3"}))
    sleeps = Sleeps()
    http = client(server, sleeps, policy=RetryPolicy(pace_on_success=True))
    await http.request("GET", "/ado")
    assert sleeps.waits == []
    await http.request("GET", "/ado")
    assert len(sleeps.waits) == 1 and 2.5 < sleeps.waits[0] <= 3.0
    plain = client(server)  # without the flag a Retry-After on a 200 is ignored
    await plain.request("GET", "/ado")
    await plain.request("GET", "/ado")
    await http.aclose()
    await plain.aclose()


@pytest.mark.parametrize(("status", "cls"), [(401, AuthError), (403, AuthError), (404, NotFoundError),
                                             (410, NotFoundError), (400, ValidationError), (422, ValidationError)])
async def test_status_maps_to_typed_error_without_retry(
    server: ScriptedServer, status: int, cls: type[HttpError]
) -> None:
    server.script("/e", Reply(status, json={"errorMessages": ["Issue does not exist"], "errors": {}},
                              headers={"X-ARequestId": "jira-req"}))
    http = client(server)
    with pytest.raises(cls) as info:
        await http.request("GET", "/e")
    assert info.value.status == status and info.value.request_id == "jira-req"
    assert info.value.vendor_text == "Issue does not exist" and len(server.seen["/e"]) == 1
    await http.aclose()


async def test_timeout_is_typed_and_retried_only_for_idempotent(server: ScriptedServer) -> None:
    server.script("/slow", Reply(json={}, delay_s=2.0))
    http = client(server, timeout_s=0.2, policy=RetryPolicy(max_attempts=2, base_s=0.01))
    with pytest.raises(RequestTimeout):
        await http.request("GET", "/slow")
    assert len(server.seen["/slow"]) == 2
    with pytest.raises(RequestTimeout):
        await http.request("POST", "/slow")
    assert len(server.seen["/slow"]) == 3
    await http.aclose()


async def test_connection_refused_is_retried_even_for_post() -> None:
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleeps = Sleeps()
    http = HttpClient("vendor", f"http://127.0.0.1:{port}", sleep=sleeps, policy=RetryPolicy(max_attempts=3))
    with pytest.raises(ConnectionFailed) as info:
        await http.request("POST", "/x", json={})
    assert http.requests_sent == 3 and info.value.extra.get("not_sent") is True
    await http.aclose()


async def test_secrets_redacted_everywhere(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    # the vendor echoes the key back in its 401 (OpenAI quotes it), and the URL carries a token
    server.script("/auth", Reply(401, json={"error": {"message": f"Incorrect API key provided: {SECRET}"}}))
    http = HttpClient("vendor", server.url, headers={"Authorization": f"Bearer {SECRET}"}, sleep=Sleeps())
    caplog.set_level(logging.DEBUG, logger="musubi.connectors.http")
    with pytest.raises(AuthError) as info:
        await http.request("GET", f"/auth?token={SECRET}&page=2")
    err = info.value
    for shown in (str(err), repr(err), str(err.to_dict()), err.vendor_text or "", caplog.text, repr(http)):
        assert SECRET not in shown
    assert MASK in str(err) and "page=2" in str(err)
    assert server.seen["/auth"][0].headers["Authorization"] == f"Bearer {SECRET}"  # it was really sent
    await http.aclose()


async def test_redactor_masks_basic_auth_forms_and_known_shapes() -> None:
    import base64

    from connectors.http import Redactor
    r = Redactor(["pat-abcdef123"])
    basic = base64.b64encode(b":pat-abcdef123").decode()
    assert "pat-abcdef123" not in r.text(f"x pat-abcdef123 {basic} y") and basic not in r.text(basic)
    assert r.headers({"PRIVATE-TOKEN": "glpat-zzz", "Accept": "json"}) == {"PRIVATE-TOKEN": MASK, "Accept": "json"}
    assert r.url("https://h/x?sig=abc&a=1") == f"https://h/x?sig={MASK}&a=1"
    assert "abc" not in r.url("https://h/x?sig=abc") and "xoxb-1234567890" not in r.text("t xoxb-1234567890-abc")
    assert "hunter2" not in r.url("https://user:hunter2@h/x")


async def test_stream_left_early_closes_the_connection(server: ScriptedServer) -> None:
    chunks = tuple(f"data: {i}\n\n".encode() for i in range(50))
    server.script("/s", Reply(stream_chunks=chunks, chunk_pause_s=0.05))
    http = client(server)
    async with http.stream("POST", "/s", json={}, idempotent=True) as resp:
        first = await resp.content.readline()
        assert first.startswith(b"data: 0")
    for _ in range(100):  # the server notices the disconnect on its next write
        if server.disconnects:
            break
        await asyncio.sleep(0.02)
    assert server.disconnects == 1
    await http.aclose()


async def test_stream_error_status_raises_before_the_block(server: ScriptedServer) -> None:
    server.script("/s", Reply(429, json={"error": {"message": "busy"}}, headers={"retry-after": "0"}),
                  Reply(stream_chunks=(b"data: ok\n\n",)))
    http = client(server)
    async with http.stream("POST", "/s", json={}, idempotent=True) as resp:
        assert await resp.read() == b"data: ok\n\n"
    assert len(server.seen["/s"]) == 2
    await http.aclose()


async def test_paginate_pages_limits_and_loops() -> None:
    pages = {None: Page([1, 2], "b"), "b": Page([3, 4], "c"), "c": Page([5], None)}

    async def fetch(cursor: str | None) -> Page[int, str]:
        return pages[cursor]

    assert [i async for i in paginate(fetch, max_items=10)] == [1, 2, 3, 4, 5]
    assert [i async for i in paginate(fetch, max_items=3, on_limit="stop")] == [1, 2, 3]
    with pytest.raises(TooManyItems, match="more than 4 issues"):
        [i async for i in paginate(fetch, max_items=4, what="issues")]
    pages["c"] = Page([5], "b")  # a vendor bug: the cursor comes back

    with pytest.raises(MusubiError, match="same page cursor"):
        [i async for i in paginate(fetch, max_items=100)]
