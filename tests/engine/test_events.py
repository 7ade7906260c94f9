"""The live event stream (/v1/events over SSE): audit events, quota alerts, tenant scoping."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from core.client import AsyncEngineClient, Identity, ping

from .helpers import Home

WAIT_S = 15.0


class Stream:
    """One subscription, pumped into a queue by a background task."""

    def __init__(self, eng: Home, tenant: str, as_user: str | None = None, types: str = "audit,quota.alert") -> None:
        self.eng = eng
        self.client = AsyncEngineClient(eng.paths, Identity(tenant=tenant, as_user=as_user, cwd="/"))
        self.types = types
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _subscribers(self) -> int:
        info = await asyncio.to_thread(ping, self.eng.paths)
        assert info
        return int(info["subscribers"])

    async def __aenter__(self) -> Stream:
        base = await self._subscribers()

        async def pump() -> None:
            async for ev in self.client.events(self.types):
                await self.queue.put(ev)

        self.task = asyncio.create_task(pump())
        # Subscribed once the engine counts us (the stream itself sends nothing until an event).
        for _ in range(400):
            if await self._subscribers() > base:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.025)
        raise AssertionError("subscription never registered")

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.client.close()

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)

    async def until(self, stop: Any) -> list[dict[str, Any]]:
        """Events up to and including the first for which ``stop(ev)`` is true."""
        out = []
        while True:
            ev = await self.next()
            out.append(ev)
            if stop(ev):
                return out


def is_member_add(user: str) -> Any:
    return lambda ev: ev.get("type") == "audit" and ev["event"]["resource"] == f"member:{user}"


async def sync(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_a_write_is_pushed_as_an_audit_event(eng: Home) -> None:
    t = await sync(eng.new_tenant, "ev")
    async with Stream(eng, t, types="audit") as s:
        await sync(eng.client(t).post, "/v1/members", {"user": "pushed", "role": "viewer"})
        ev = await s.next()
    assert ev["type"] == "audit" and ev["tenant"] == t
    e = ev["event"]
    assert e["action"] == "member.add" and e["resource"] == "member:pushed" and e["outcome"] == "success"
    listed = (await sync(eng.audit, t))[-1]
    assert (e["seq"], e["hash"], e["prev_hash"]) == (listed["seq"], listed["hash"], listed["prev_hash"])


async def test_denials_are_pushed_too(eng: Home) -> None:
    t = await sync(eng.new_tenant, "evd", {"gst": "guest"})
    async with Stream(eng, t, types="audit") as s:
        status, _ = await sync(
            lambda: eng.raw(
                "PUT",
                "/v1/quotas",
                {"metric": "tokens", "limit": 1, "period": "day"},
                tenant=t,
                as_user="gst",
            )
        )
        assert status == 403
        ev = await s.next()
    assert ev["event"]["outcome"] == "denied" and ev["event"]["actor"] == "gst"
    assert ev["event"]["details"]["permission"] == "quotas.manage"


async def test_quota_alerts_fire_once_per_threshold_per_window(eng: Home) -> None:
    t = await sync(eng.new_tenant, "eva", {"vw": "viewer"})
    root = eng.client(t)
    await sync(root.put, "/v1/quotas", {"metric": "tokens", "limit": 1000, "period": "day", "alerts": "0.5,1.0"})

    async def use(n: int) -> None:
        await sync(root.post, "/v1/usage", {"model": "m", "input_tokens": n})

    async with Stream(eng, t) as owner, Stream(eng, t, as_user="vw") as viewer:
        for n in (400, 200, 100, 300):  # 40 %, 60 % (crosses 0.5), 70 %, 100 % (crosses 1.0)
            await use(n)
        # Raising the limit in the same window does not re-arm thresholds already crossed.
        await sync(root.put, "/v1/quotas", {"metric": "tokens", "limit": 2000, "period": "day", "alerts": "0.5,1.0"})
        await use(500)
        await use(499)  # 1000/2000 then 1999/2000: the 0.5 alert was already sent in this window
        # Sentinels: an audit event for the owner, a fresh alert for the viewer (who sees no audit).
        await sync(root.post, "/v1/members", {"user": "sentinel", "role": "guest"})
        await sync(
            root.put,
            "/v1/quotas",
            {"metric": "tokens", "limit": 1_000_000, "period": "minute", "alerts": "0.000001"},
        )
        await use(1)  # 2000/2000: 1.0 was already sent too; only the minute quota alerts
        seen = await owner.until(is_member_add("sentinel"))
        seen_v = await viewer.until(lambda ev: ev.get("type") == "quota.alert" and ev["period"] == "minute")

    alerts = [ev for ev in seen if ev["type"] == "quota.alert"]
    assert [(a["threshold"], a["used"], a["limit"]) for a in alerts] == [(0.5, 600, 1000), (1.0, 1000, 1000)]
    assert all(a["tenant"] == t and a["metric"] == "tokens" and a["period"] == "day" for a in alerts)
    audited = [ev["event"] for ev in seen if ev["type"] == "audit" and ev["event"]["action"] == "quota.alert"]
    assert [e["details"]["threshold"] for e in audited] == [0.5, 1.0]
    assert all(e["actor"] == "engine" for e in audited)
    # The viewer may read quotas but not the audit log: alerts only.
    assert {ev["type"] for ev in seen_v} == {"quota.alert"}
    assert [(a["period"], a["threshold"]) for a in seen_v] == [("day", 0.5), ("day", 1.0), ("minute", 0.000001)]
    # The record agrees: exactly two day alerts in the audit log.
    logged = await sync(lambda: eng.audit(t, action="quota.alert"))
    assert [(e["details"]["period"], e["details"]["threshold"]) for e in logged] == [
        ("day", 0.5),
        ("day", 1.0),
        ("minute", 0.000001),
    ]


async def test_subscribers_see_only_their_tenant(eng: Home) -> None:
    e_t = await sync(eng.new_tenant, "eve")
    f_t = await sync(eng.new_tenant, "evf")
    async with Stream(eng, f_t) as f:
        await sync(eng.client(e_t).post, "/v1/members", {"user": "in-e", "role": "guest"})
        await sync(eng.client(e_t).post, "/v1/usage", {"model": "m", "input_tokens": 1})
        await sync(eng.client(f_t).post, "/v1/members", {"user": "in-f", "role": "guest"})
        first = await f.next()
    assert first["tenant"] == f_t and first["event"]["resource"] == "member:in-f"


async def test_event_stream_refuses_non_members(eng: Home) -> None:
    t = await sync(eng.new_tenant, "evn")
    s = Stream(eng, t, as_user="stranger")
    try:
        agen = s.client.events()
        try:
            await asyncio.wait_for(agen.__anext__(), WAIT_S)
            raise AssertionError("a stranger was subscribed")
        except Exception as exc:  # PermissionDenied from the 403
            assert getattr(exc, "code", None) == "permission_denied", exc
    finally:
        await s.client.close()


def test_alerts_are_not_repeated_after_a_restart(home: Home) -> None:
    home.start()
    t = home.new_tenant("evr")
    c = home.client(t)
    c.put("/v1/quotas", {"metric": "tokens", "limit": 1000, "period": "day", "alerts": "0.5"})
    c.post("/v1/usage", {"model": "m", "input_tokens": 600})
    assert len(home.audit(t, action="quota.alert")) == 1
    home.stop()
    home.start()
    c.post("/v1/usage", {"model": "m", "input_tokens": 100})
    assert len(home.audit(t, action="quota.alert")) == 1
