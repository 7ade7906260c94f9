"""Exact admission under concurrency: nothing is over-admitted, the ledger and status agree."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from core.client import AsyncEngineClient, Identity
from core.errors import EXIT_QUOTA, QuotaExceeded

from .helpers import Home


def _outcomes(results: list[Any]) -> tuple[list[dict[str, Any]], list[QuotaExceeded]]:
    ok = [r for r in results if isinstance(r, dict)]
    over = [r for r in results if isinstance(r, QuotaExceeded)]
    others = [r for r in results if not isinstance(r, (dict, QuotaExceeded))]
    assert not others, others
    return ok, over


def test_forty_threads_against_a_thousand_tokens_admit_exactly_ten(eng: Home) -> None:
    t = eng.new_tenant("cq", {"racer": "member"})
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": 1000, "period": "day"})
    start = threading.Barrier(40)
    results: list[Any] = [None] * 40

    def worker(i: int) -> None:
        c = eng.client(t, as_user="racer")  # each request is its own connection
        start.wait()
        try:
            results[i] = c.post("/v1/usage", {"model": f"m{i}", "input_tokens": 60, "output_tokens": 40})
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    ok, over = _outcomes(results)
    assert len(ok) == 10 and len(over) == 30
    assert all(e.exit_code == EXIT_QUOTA and "Nothing was charged" in e.message for e in over)
    assert len({r["entry_id"] for r in ok}) == 10

    q = eng.quota(t, "tokens", "day")
    assert q["used"] == 1000 and q["remaining"] == 0 and q["reserved"] == 0
    assert eng.quota(t, "requests", "hour")["used"] == 10
    # The ledger (read back from the database) agrees with the in-memory counters.
    hist = eng.client(t).get("/v1/usage/history", {"bucket": "day", "since_hours": 48})
    assert sum(r["tokens"] for r in hist["rows"]) == 1000
    assert sum(r["requests"] for r in hist["rows"]) == 10
    # Every admission and every refusal is on the record.
    rec = eng.audit(t, action="usage.record")
    assert sum(e["outcome"] == "success" for e in rec) == 10
    denied = [e for e in rec if e["outcome"] == "denied"]
    assert len(denied) == 30
    assert all(e["details"]["code"] == "quota_exceeded" and e["actor"] == "racer" for e in denied)
    assert all(e["details"]["quota"]["requested"] == 100 for e in denied)
    assert {e["details"]["entry_id"] for e in rec if e["outcome"] == "success"} == {r["entry_id"] for r in ok}
    assert eng.client(t).post("/v1/audit/verify", {})["ok"] is True


async def test_user_quota_under_asyncio_admits_exactly_five(eng: Home) -> None:
    t = await asyncio.to_thread(eng.new_tenant, "cqa", {"u1": "member", "u2": "member"})
    await asyncio.to_thread(
        eng.client(t).put, "/v1/quotas", {"metric": "tokens", "limit": 500, "period": "hour", "user": "u1"}
    )
    c1 = AsyncEngineClient(eng.paths, Identity(tenant=t, as_user="u1", cwd="/"))
    c2 = AsyncEngineClient(eng.paths, Identity(tenant=t, as_user="u2", cwd="/"))
    try:
        calls = [c1.post("/v1/usage", {"model": "x", "input_tokens": 100}) for _ in range(20)]
        calls += [c2.post("/v1/usage", {"model": "x", "input_tokens": 100}) for _ in range(20)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await c1.close()
        await c2.close()
    ok1, over1 = _outcomes(list(results[:20]))
    ok2, over2 = _outcomes(list(results[20:]))
    assert (len(ok1), len(over1)) == (5, 15)
    assert (len(ok2), len(over2)) == (20, 0)  # u1's limit is u1's alone
    assert all(e.extra["quota"]["scope"] == "user" for e in over1)
    st = await asyncio.to_thread(eng.quota, t, "tokens", "hour", "u1")
    assert st["used"] == 500
    tenant_day = await asyncio.to_thread(eng.quota, t, "tokens", "day")
    assert tenant_day["used"] == 2500


def test_a_charge_refused_by_one_quota_charges_none(eng: Home) -> None:
    """Refusal is whole: the requests counter does not move when tokens refuse."""
    t = eng.new_tenant("cqw")
    c = eng.client(t)
    c.put("/v1/quotas", {"metric": "tokens", "limit": 50, "period": "minute"})
    before = eng.quota(t, "requests", "hour")["used"]
    status, body = eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 51}, tenant=t)
    assert status == 429 and body["error"]["code"] == "quota_exceeded"
    assert "50 tokens per minute" in body["error"]["message"]
    assert eng.quota(t, "requests", "hour")["used"] == before
    assert eng.quota(t, "tokens", "day")["used"] == 0
    assert eng.client(t).get("/v1/usage/history")["rows"] == []


def test_cost_quota_is_exact_in_micro_dollars(eng: Home) -> None:
    t = eng.new_tenant("cqc")
    c = eng.client(t)
    c.put("/v1/quotas", {"metric": "cost_usd", "limit": "0.3", "period": "day"})
    for _ in range(3):
        c.post("/v1/usage", {"model": "m", "input_tokens": 1, "cost_usd": "0.1"})
    assert eng.quota(t, "cost_usd", "day")["used"] == "0.300000"
    status, body = eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 1, "cost_usd": "0.000001"}, tenant=t)
    assert status == 429 and "$0.300000" in body["error"]["message"]
