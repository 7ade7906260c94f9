"""Concurrent `audit prune` with the same --before is one prune (issue 9, item 2).

Before: ten at once gave 200, 200, 500 "duplicate key", and the duplicate checkpoint
poisoned the apply so that every later start failed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .helpers import Home, poll, utc_iso


def test_ten_concurrent_prunes_are_one_prune_and_the_chain_verifies_after_a_restart(home: Home) -> None:
    home.start()
    t = home.new_tenant("pc")
    c = home.client(t)
    for i in range(30):
        c.post("/v1/members", {"user": f"u{i}", "role": "viewer"})
    time.sleep(0.01)
    before = utc_iso()
    time.sleep(0.01)
    c.post("/v1/members", {"user": "kept", "role": "viewer"})

    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()
    go = threading.Barrier(10)

    def prune() -> None:
        go.wait()
        r = home.raw("POST", "/v1/audit/prune", {"before": before}, tenant=t, timeout=60)
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=prune) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    assert len(answers) == 10
    statuses = sorted(s for s, _b in answers)
    assert set(statuses) <= {200, 409}, answers  # never a 500
    ok = [b for s, b in answers if s == 200]
    assert ok and all(b == ok[0] for b in ok), ok  # joined prunes get the one prune's answer
    for s, b in answers:
        if s == 409:  # arrived after the prune was done: what a later prune is told
            assert b["error"]["code"] == "conflict" and "no audit events before" in b["error"]["message"]

    assert len(home.audit(t, action="audit.prune")) == 1
    assert home.client(t).post("/v1/audit/verify", {})["checkpoints"] == 1
    assert home.client().get("/v1/health")["quarantined_groups"] == 0  # nothing was refused by the database

    home.stop()
    info = home.start()
    assert info["started"] is True
    v = poll(lambda: home.client(t).post("/v1/audit/verify", {}))
    assert v["ok"] is True and v["checkpoints"] == 1 and v["start_seq"] == ok[0]["pruned_through_seq"] + 1, v
    assert "kept" in {m["user"] for m in c.get("/v1/members")}


def test_prunes_with_different_dates_take_turns(home: Home) -> None:
    home.start()
    t = home.new_tenant("pd")
    c = home.client(t)
    dates = []
    for i in range(6):
        c.post("/v1/members", {"user": f"u{i}", "role": "viewer"})
        time.sleep(0.01)
        dates.append(utc_iso())
        time.sleep(0.01)
    answers: list[tuple[int, Any]] = []
    go = threading.Barrier(len(dates))

    def prune(d: str) -> None:
        go.wait()
        answers.append(home.raw("POST", "/v1/audit/prune", {"before": d}, tenant=t, timeout=60))

    threads = [threading.Thread(target=prune, args=(d,)) for d in dates]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    assert {s for s, _b in answers} <= {200, 409}, answers
    done = [b["pruned_through_seq"] for s, b in answers if s == 200]
    assert len(done) == len(set(done)) >= 1  # each checkpoint once
    home.stop()
    home.start()
    v = home.client(t).post("/v1/audit/verify", {})
    assert v["ok"] is True and v["checkpoints"] == len(done), v
