"""kill -9 in the middle of a burst of writes: every acknowledged write is there, the chain verifies."""

from __future__ import annotations

import threading
from typing import Any

from core.errors import EngineUnavailable

from .helpers import Home, poll, wait_gone


def test_kill9_mid_burst_loses_nothing_acknowledged(home: Home) -> None:
    home.start()
    t = home.new_tenant("kb")
    c = home.client(t)
    c.put("/v1/quotas", {"metric": "requests", "limit": 10**9, "period": "hour"})
    c.put("/v1/quotas", {"metric": "tokens", "limit": 10**12, "period": "day"})

    lock = threading.Lock()
    acked_usage: list[int] = []
    acked_members: list[str] = []
    surprises: list[BaseException] = []

    def burst(kind: str, i: int) -> None:
        cl = home.client(t)
        n = 0
        while True:
            n += 1
            try:
                if kind == "usage":
                    r: Any = cl.post("/v1/usage", {"model": f"w{i}", "input_tokens": 1, "output_tokens": 2})
                    with lock:
                        acked_usage.append(int(r["entry_id"]))
                else:
                    user = f"m{i}-{n}"
                    cl.post("/v1/members", {"user": user, "role": "viewer"})
                    with lock:
                        acked_members.append(user)
            except EngineUnavailable:
                return  # the engine is gone: this request's fate is unknown, and not claimed
            except BaseException as exc:  # anything else is a real failure
                surprises.append(exc)
                return

    threads = [threading.Thread(target=burst, args=("usage", i)) for i in range(6)]
    threads += [threading.Thread(target=burst, args=("member", i)) for i in range(2)]
    for th in threads:
        th.start()
    try:
        poll(lambda: len(acked_usage) >= 150 and len(acked_members) >= 30, timeout=60, interval=0.01)
        helper = home.client().get("/v1/health")["sync_helper_pid"]
        old_pid = home.kill9()
    finally:
        for th in threads:
            th.join(60)
    assert not surprises, surprises
    assert not any(th.is_alive() for th in threads)
    wait_gone(helper)  # the journal's sync helper does not outlive its engine

    info = home.start()
    assert info["started"] is True and info["pid"] != old_pid

    # Usage: every acknowledged ledger entry is there, and ledger, counters and audit agree.
    records = home.audit(t, action="usage.record", outcome="success")
    in_audit = {e["details"]["entry_id"] for e in records}
    missing = set(acked_usage) - in_audit
    assert not missing, f"{len(missing)} acknowledged usage records lost: {sorted(missing)[:10]}"
    hist = c.get("/v1/usage/history", {"bucket": "day", "since_hours": 48})
    assert sum(r["tokens"] for r in hist["rows"]) == 3 * len(records)
    assert home.quota(t, "tokens", "day")["used"] == 3 * len(records)
    assert home.quota(t, "requests", "hour")["used"] == len(records)

    # Members: every acknowledged binding is there, and each has its audit event.
    members = {m["user"] for m in c.get("/v1/members")}
    assert set(acked_members) <= members
    added = {e["resource"].removeprefix("member:") for e in home.audit(t, action="member.add")}
    assert members - {home.client().get("/v1/whoami")["user"]} <= added

    v = c.post("/v1/audit/verify", {})
    assert v["ok"] is True, v
    assert v["checked"] == home.head_seq(t) and v["checked"] >= len(acked_usage) + len(acked_members)
    assert home.client().post("/v1/audit/verify", {})["ok"] is True

    # And the engine takes new writes after the crash, chaining on.
    c.post("/v1/usage", {"model": "after", "input_tokens": 1})
    assert c.post("/v1/audit/verify", {})["ok"] is True
