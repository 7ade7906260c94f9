"""Jobs through the real engine: run, cancel, fail, audit, RBAC, tenant and project isolation, events."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from typing import Any

import pytest

from core.api import responses as a
from tests.engine.helpers import Home, poll, unique
from tests.engine.test_api_models import _exactly
from tests.engine.test_events import Stream

from .helpers import KIND, actions, get, let_steps_pass, start, wait_done_at_least, wait_state

ME = pwd.getpwuid(os.getuid()).pw_name
SLOW: dict[str, Any] = {"n": 100_000, "delay_s": 0.01, "every": 50}


def test_a_job_runs_to_done_with_its_checkpoint_result_and_audit(jeng: Home) -> None:
    t = jeng.new_tenant("jb")
    j = start(jeng, t, n=40, delay_s=0.001, every=10)
    _exactly(j, a.Job)
    assert j["state"] == "queued" and j["created_by"] == ME and j["params"]["n"] == 40
    done = wait_state(jeng, t, j["id"], "done")
    _exactly(done, a.Job)
    assert done["progress"]["done"] == done["progress"]["total"] == 40
    assert done["checkpoint"] == {"count": 40, "attempts": [{"from": 0, "to": 40}]}
    assert done["result"] == done["checkpoint"] and done["attempts"] == 1 and done["error"] is None
    assert done["started_at"] and done["finished_at"]
    assert actions(jeng, t, j["id"]) == [("job.start", ME, "success"), ("job.finish", "engine", "success")]
    listed = jeng.client(t).get("/v1/jobs")
    assert [r["id"] for r in listed] == [j["id"]]
    for r in listed:
        _exactly(r, a.Job)


def test_cancel_really_stops_the_work(jeng: Home) -> None:
    t = jeng.new_tenant("jb")
    j = start(jeng, t, **SLOW)
    wait_done_at_least(jeng, t, j["id"], 5)
    status, body = jeng.raw("POST", f"/v1/jobs/{j['id']}/cancel", tenant=t)
    assert status == 200, body
    _exactly(body, a.Job)
    assert body["state"] in ("cancelling", "cancelled") and body["cancelled_by"] == ME
    end = wait_state(jeng, t, j["id"], "cancelled")
    stopped_at = end["progress"]["done"]
    assert 5 <= stopped_at < SLOW["n"]
    let_steps_pass(jeng, t)  # thirty steps' worth: a counter still running would have moved
    assert get(jeng, t, j["id"])["progress"]["done"] == stopped_at
    acts = actions(jeng, t, j["id"])
    assert acts == [("job.start", ME, "success"), ("job.cancel", ME, "success"), ("job.stop", "engine", "success")]
    # Cancelling again: a final job has nothing to cancel (409), and nothing changes.
    status, body = jeng.raw("POST", f"/v1/jobs/{j['id']}/cancel", tenant=t)
    assert status == 409 and body["error"]["code"] == "job_finished"
    assert len(actions(jeng, t, j["id"])) == 3


def test_a_runner_that_ignores_cancel_is_stopped_at_its_next_await(jeng: Home) -> None:
    t = jeng.new_tenant("jb")
    j = start(jeng, t, **SLOW, ignore_cancel=True)
    wait_done_at_least(jeng, t, j["id"], 5)
    jeng.client(t).post(f"/v1/jobs/{j['id']}/cancel")
    end = wait_state(jeng, t, j["id"], "cancelled")
    let_steps_pass(jeng, t)
    assert get(jeng, t, j["id"])["progress"]["done"] == end["progress"]["done"] < SLOW["n"]


def test_a_failing_job_is_failed_with_its_error_and_audited(jeng: Home) -> None:
    t = jeng.new_tenant("jb")
    j = start(jeng, t, n=50, delay_s=0, every=10, fail_at=25)
    end = wait_state(jeng, t, j["id"], "failed")
    assert end["error"] == "RuntimeError: failing at step 25 as asked (params.fail_at)"
    assert end["checkpoint"]["count"] == 20  # the last committed point; steps 21-24 were never committed
    assert [x[0] for x in actions(jeng, t, j["id"])] == ["job.start", "job.fail"]


def test_jobs_queue_beyond_the_running_cap(jhome: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSUBI_MAX_JOBS", "1")
    jhome.start()
    first = start(jhome, "default", **SLOW)
    second = start(jhome, "default", n=3, delay_s=0, every=1)
    wait_done_at_least(jhome, "default", first["id"], 3)
    assert get(jhome, "default", second["id"])["state"] == "queued"
    jhome.client("default").post(f"/v1/jobs/{first['id']}/cancel")
    assert wait_state(jhome, "default", second["id"], "done")["progress"]["done"] == 3
    # A queued job cancelled before it ran never runs.
    third = start(jhome, "default", **SLOW)
    fourth = start(jhome, "default", n=1, delay_s=0)
    wait_done_at_least(jhome, "default", third["id"], 1)
    end = jhome.client("default").post(f"/v1/jobs/{fourth['id']}/cancel")
    assert end["state"] == "cancelled" and end["started_at"] is None and end["attempts"] == 0
    jhome.client("default").post(f"/v1/jobs/{third['id']}/cancel")


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("GET", "/v1/jobs/nope", None, 400, "job ids look like j-"),
    ("POST", "/v1/jobs/j-zz/cancel", None, 400, "job ids look like j-"),
    ("GET", "/v1/jobs/j-000000000000", None, 404, "no job j-000000000000"),
    ("POST", "/v1/jobs/j-000000000000/cancel", None, 404, "no job j-000000000000"),
    ("GET", "/v1/jobs?state=runnin", None, 400, "unknown job state runnin"),
    ("GET", "/v1/jobs?limit=0", None, 400, "limit"),
    ("GET", "/v1/jobs?limit=1001", None, 400, "limit"),
    ("POST", "/v1/jobs", {"kind": "nope"}, 400, "unknown job kind 'nope'; kinds this engine runs: test.count"),
    ("POST", "/v1/jobs", {}, 400, "kind"),
    ("POST", "/v1/jobs", {"kind": KIND, "params": [1]}, 400, "params must be a JSON object"),
    ("POST", "/v1/jobs", {"kind": KIND, "params": {"n": -1}}, 400, "params.n must be a whole number"),
    ("POST", "/v1/jobs", {"kind": KIND, "params": {"x": 1}}, 400, "unknown params for test.count: x"),
])
def test_bad_input_is_refused_naming_the_problem(
    jeng: Home, method: str, path: str, body: Any, status: int, says: str
) -> None:
    t = jeng.new_tenant("jb")
    before = jeng.head_seq(t)
    got, answer = jeng.raw(method, path, body, tenant=t)
    assert got == status, answer
    assert says in answer["error"]["message"], answer
    assert jeng.head_seq(t) == before  # nothing was written, not even an audit event
    assert jeng.client(t).get("/v1/jobs") == []


# -- RBAC and isolation ----------------------------------------------------------------------


def test_rbac_of_start_read_and_cancel(jeng: Home) -> None:
    t = jeng.new_tenant("jb", {"vic": "viewer", "mel": "member", "max": "member", "aud": "auditor"})
    # Starting needs the kind's permission (index.build): a viewer is refused, and the refusal is audited.
    status, body = jeng.raw("POST", "/v1/jobs", {"kind": KIND, "params": SLOW}, tenant=t, as_user="vic")
    assert status == 403 and body["error"]["permission"] == "index.build"
    denied = [e for e in jeng.audit(t) if e["action"] == "job.start" and e["outcome"] == "denied"]
    assert [e["actor"] for e in denied] == ["vic"]
    j = start(jeng, t, as_user="mel", **SLOW)
    # Reading needs any role in the tenant: the viewer and the auditor see it.
    for u in ("vic", "aud"):
        assert get(jeng, t, j["id"], as_user=u)["created_by"] == "mel"
        assert [r["id"] for r in jeng.client(t, as_user=u).get("/v1/jobs")] == [j["id"]]
    # Cancelling someone else's job needs the kind's permission: the viewer may not, another member may.
    status, body = jeng.raw("POST", f"/v1/jobs/{j['id']}/cancel", tenant=t, as_user="vic")
    assert status == 403 and body["error"]["permission"] == "index.build"
    assert get(jeng, t, j["id"])["state"] == "running"
    assert jeng.client(t, as_user="max").post(f"/v1/jobs/{j['id']}/cancel")["cancelled_by"] == "max"
    wait_state(jeng, t, j["id"], "cancelled")


def test_the_creator_may_cancel_without_the_permission(jeng: Home) -> None:
    t = jeng.new_tenant("jb", {"mel": "member"})
    j = start(jeng, t, as_user="mel", **SLOW)
    # mel loses index.build (now a viewer) but stays the job's creator.
    jeng.client(t).post("/v1/members", {"user": "mel", "role": "viewer"})
    assert "index.build" not in jeng.client(t, as_user="mel").get("/v1/whoami")["permissions"]
    assert jeng.client(t, as_user="mel").post(f"/v1/jobs/{j['id']}/cancel")["cancelled_by"] == "mel"
    wait_state(jeng, t, j["id"], "cancelled")


def test_another_tenants_job_is_404(jeng: Home) -> None:
    t1 = jeng.new_tenant("jb")
    t2 = jeng.new_tenant("jb", {"bob": "owner"})
    j = start(jeng, t1, n=1, delay_s=0)
    for method, path in (("GET", f"/v1/jobs/{j['id']}"), ("POST", f"/v1/jobs/{j['id']}/cancel")):
        status, body = jeng.raw(method, path, tenant=t2, as_user="bob")
        assert status == 404 and body["error"]["code"] == "not_found", body
        assert t1 not in body["error"]["message"]
    assert jeng.client(t2, as_user="bob").get("/v1/jobs") == []
    # bob has no role in t1 at all: refused before anything is looked up.
    status, body = jeng.raw("GET", f"/v1/jobs/{j['id']}", tenant=t1, as_user="bob")
    assert status == 403


def test_a_project_role_sees_only_its_projects_jobs(jeng: Home, tmp_path: Any) -> None:
    t = jeng.new_tenant("jb")
    c = jeng.client(t)
    for name in ("p1", "p2"):
        (tmp_path / name).mkdir()
        c.post("/v1/projects", {"path": str(tmp_path / name), "name": name})
    c.post("/v1/members", {"user": "pam", "role": "member", "project": "p1"})
    c.post("/v1/members", {"user": "quin", "role": "member", "project": "p2"})
    j1 = start(jeng, t, as_user="pam", project="p1", n=1, delay_s=0)
    assert j1["project"] == "p1"
    whole = start(jeng, t, n=1, delay_s=0)  # the tenant's owner, no project
    # pam's project role lets her start in p1 only.
    status, body = jeng.raw("POST", "/v1/jobs", {"kind": KIND, "params": {"n": 1}}, tenant=t, as_user="pam",
                            project="p2")
    assert status == 403
    assert [r["id"] for r in jeng.client(t, as_user="quin", project="p2").get("/v1/jobs")] == []
    status, _ = jeng.raw("GET", f"/v1/jobs/{j1['id']}", tenant=t, as_user="quin", project="p2")
    assert status == 404
    assert [r["id"] for r in jeng.client(t, as_user="pam", project="p1").get("/v1/jobs")] == [j1["id"]]
    assert {r["id"] for r in c.get("/v1/jobs")} == {j1["id"], whole["id"]}
    assert [r["id"] for r in c.get("/v1/jobs", {"state": "done,failed", "kind": KIND, "limit": 1})] in (
        [j1["id"]], [whole["id"]])


# -- events ----------------------------------------------------------------------------------


async def test_progress_events_are_coalesced(jeng: Home) -> None:
    t = await asyncio.to_thread(jeng.new_tenant, "jb")
    n = 20_000
    async with Stream(jeng, t, types="job.progress,job.state") as s:
        t0 = time.monotonic()
        j = await asyncio.to_thread(start, jeng, t, n=n, delay_s=0, every=5_000)
        evs = await s.until(lambda ev: ev["type"] == "job.state" and ev["job"]["state"] == "done")
        elapsed = time.monotonic() - t0
    progress = [ev for ev in evs if ev["type"] == "job.progress"]
    assert all(ev["job"]["id"] == j["id"] for ev in evs)
    assert [ev["job"]["state"] for ev in evs if ev["type"] == "job.state"] == ["queued", "running", "done"]
    # 20,000 progress reports; at most one event per 0.25 s (plus the first and the final flush).
    assert len(progress) <= elapsed / 0.25 + 2, (len(progress), elapsed)
    dones = [ev["job"]["progress"]["done"] for ev in progress]
    assert dones == sorted(dones) and dones[-1] == n
    assert evs[-1]["job"]["progress"]["done"] == n


async def test_job_events_go_only_to_the_jobs_tenant(jeng: Home) -> None:
    t1, t2 = await asyncio.to_thread(jeng.new_tenant, "jb"), await asyncio.to_thread(jeng.new_tenant, "jb")
    async with Stream(jeng, t2, types="job.progress,job.state") as other, Stream(jeng, t1, types="job.state") as mine:
        j = await asyncio.to_thread(start, jeng, t1, n=5, delay_s=0)
        await mine.until(lambda ev: ev["job"]["state"] == "done")
        j2 = await asyncio.to_thread(start, jeng, t2, n=1, delay_s=0)
        evs = await other.until(lambda ev: ev["type"] == "job.state" and ev["job"]["state"] == "done")
    assert {ev["job"]["id"] for ev in evs} == {j2["id"]} != {j["id"]}


def test_list_is_newest_first_and_unique_per_job(jeng: Home) -> None:
    t = jeng.new_tenant("jb")
    ids = [start(jeng, t, n=1, delay_s=0)["id"] for _ in range(3)]
    poll(lambda: all(r["state"] == "done" for r in jeng.client(t).get("/v1/jobs")))
    assert [r["id"] for r in jeng.client(t).get("/v1/jobs")] == ids[::-1]
    assert [r["id"] for r in jeng.client(t).get("/v1/jobs", {"limit": 2})] == ids[:0:-1]
    assert jeng.client(t).get("/v1/jobs", {"kind": "other"}) == []
    assert unique("x") != unique("x")


def test_a_suspended_tenant_refuses_start_and_cancel_but_shows_its_jobs_to_owners(jeng: Home) -> None:
    t = jeng.new_tenant("jb", {"mel": "member"})
    j = start(jeng, t, as_user="mel", **SLOW)
    jeng.client().post(f"/v1/tenants/{t}/suspend", {"reason": "audit"})
    try:
        for who in ("mel", None):  # the creator, and the owner
            status, body = jeng.raw("POST", f"/v1/jobs/{j['id']}/cancel", tenant=t, as_user=who)
            assert status == 403 and body["error"]["code"] == "tenant_suspended", body
        status, body = jeng.raw("POST", "/v1/jobs", {"kind": KIND}, tenant=t)
        assert status == 403 and body["error"]["code"] == "tenant_suspended"
        assert get(jeng, t, j["id"])["cancelled_by"] is None  # the owner still reads it
        status, body = jeng.raw("GET", "/v1/jobs", tenant=t, as_user="mel")
        assert status == 403 and body["error"]["code"] == "tenant_suspended"
    finally:
        jeng.client().post(f"/v1/tenants/{t}/resume", {})
    jeng.client(t).post(f"/v1/jobs/{j['id']}/cancel")
    wait_state(jeng, t, j["id"], "cancelled")
