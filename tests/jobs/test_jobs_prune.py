"""Finished jobs leave the engine's memory beyond a bound; ``jobs list``/``show``/``cancel`` read them from table
``jobs`` (core/jobs/service.py, docs/jobs.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.jobs.model import Job, new_job_id
from core.jobs.service import JobService
from tests.engine.helpers import Home

from .helpers import get, start, wait_state

T0 = datetime(2026, 1, 1)


def row(kind: str, state: str, minute: int, project: str | None = None) -> dict[str, Any]:
    j = Job(new_job_id(), kind, "t", project, state, "u", T0 + timedelta(minutes=minute),
            T0 + timedelta(minutes=minute))
    j.finished_at = T0 + timedelta(minutes=minute) if state in ("done", "failed", "cancelled") else None
    return j.row()


def test_memory_keeps_active_jobs_the_most_recent_finished_and_the_last_of_each_kind() -> None:
    rows = [row("a", "done", m) for m in range(10)] + [row("b", "failed", 0), row("a", "done", 1, "p")]
    rows += [row("a", "running", 20), row("a", "interrupted", 21), row("a", "queued", 22)]
    svc = JobService(None, rows, keep_finished=3)  # type: ignore[arg-type]  # pruning needs no engine
    kept = {(j.kind, j.state, j.project, j.created_at.minute) for j in svc.jobs.values()}
    assert kept == {
        ("a", "running", None, 20), ("a", "interrupted", None, 21), ("a", "queued", None, 22),  # never finished
        ("a", "done", None, 9), ("a", "done", None, 8), ("a", "done", None, 7),  # the three most recent
        ("b", "failed", None, 0), ("a", "done", "p", 1),  # the last of their (tenant, project, kind)
    }
    assert svc.pruned == 7


def test_pruned_jobs_are_listed_shown_and_refused_a_cancel_from_the_table(
    jhome: Home, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUSUBI_JOBS_KEPT", "1")
    jhome.start()
    t = jhome.new_tenant("jp")
    c = jhome.client(t)
    (tmp_path / "p1").mkdir()
    c.post("/v1/projects", {"path": str(tmp_path / "p1"), "name": "p1"})
    c.post("/v1/members", {"user": "pam", "role": "viewer", "project": "p1"})
    ids = []
    for i in range(4):  # one at a time: each finishes before the next, so the first ones leave memory
        j = start(jhome, t, project="p1" if i % 2 else None, n=1, delay_s=0)
        wait_state(jhome, t, j["id"], "done")
        ids.append(j["id"])
    running = start(jhome, t, n=100_000, delay_s=0.01, every=50)
    listed = c.get("/v1/jobs")
    assert [r["id"] for r in listed] == [running["id"], *reversed(ids)]
    assert all(r["state"] == "done" and r["progress"]["done"] == 1 for r in listed[1:])
    assert [r["id"] for r in c.get("/v1/jobs", {"state": "done", "limit": 2})] == [ids[3], ids[2]]
    assert [r["id"] for r in c.get("/v1/jobs", {"state": "running"})] == [running["id"]]
    assert c.get("/v1/jobs", {"state": "failed"}) == []
    first = get(jhome, t, ids[0])
    assert first["state"] == "done" and first["result"] == {"count": 1, "attempts": [{"from": 0, "to": 1}]}
    # A finished job read from the table is still finished: nothing to cancel, and nothing changes.
    status, body = jhome.raw("POST", f"/v1/jobs/{ids[0]}/cancel", tenant=t)
    assert status == 409 and body["error"]["code"] == "job_finished", body
    # Visibility holds for the table's rows too: pam sees only p1's jobs, and another tenant sees none.
    assert [r["id"] for r in jhome.client(t, as_user="pam", project="p1").get("/v1/jobs")] == [ids[3], ids[1]]
    status, _ = jhome.raw("GET", f"/v1/jobs/{ids[0]}", tenant=t, as_user="pam", project="p1")
    assert status == 404
    other = jhome.new_tenant("jq")
    status, _ = jhome.raw("GET", f"/v1/jobs/{ids[0]}", tenant=other)
    assert status == 404 and jhome.client(other).get("/v1/jobs") == []
    # After a restart the engine loads the table and prunes again: the same answers.
    c.post(f"/v1/jobs/{running['id']}/cancel")
    wait_state(jhome, t, running["id"], "cancelled")
    jhome.stop()
    jhome.start()
    assert [r["id"] for r in jhome.client(t).get("/v1/jobs")] == [running["id"], *reversed(ids)]
    assert get(jhome, t, ids[0])["state"] == "done"
