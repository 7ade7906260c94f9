"""Jobs across engine restarts: kill -9 mid-job, graceful stop, a kind the new engine lacks."""

from __future__ import annotations

import os

import pytest

from tests.engine.helpers import Home, poll

from .helpers import actions, get, start, wait_done_at_least, wait_state


def _contiguous(attempts: list[dict[str, int]], n: int) -> None:
    """Each attempt started exactly where the previous one's committed work ended; together, exactly n steps."""
    assert attempts[0]["from"] == 0
    for before, after in zip(attempts, attempts[1:], strict=False):
        assert after["from"] == before["to"], attempts
    assert sum(x["to"] - x["from"] for x in attempts) == n


def test_kill9_mid_job_then_restart_resumes_from_the_checkpoint(jhome: Home) -> None:
    jhome.start()
    n = 300
    j = start(jhome, "default", n=n, delay_s=0.01, every=10)
    seen = wait_done_at_least(jhome, "default", j["id"], 50, key="checkpoint")
    committed = seen["checkpoint"]["count"]
    jhome.kill9()
    jhome.start()
    end = wait_state(jhome, "default", j["id"], "done", timeout=60)
    attempts = end["result"]["attempts"]
    assert len(attempts) == 2 and end["attempts"] == 2
    # Resumed where the committed work ended (at or after what we saw committed), never from 0.
    assert attempts[1]["from"] == attempts[0]["to"] >= committed >= 50
    _contiguous(attempts, n)
    assert end["progress"]["done"] == n and end["error"] is None
    # The job's row reads "done" from memory as soon as the runner returns; its audit event is
    # listed once the group commit holding it is durable, a moment later.
    want = ["job.start", "job.interrupt", "job.resume", "job.finish"]
    acts = poll(lambda: (a if (a := [x[0] for x in actions(jhome, "default", j["id"])]) == want else None))
    assert acts == want


def test_a_graceful_stop_interrupts_and_the_next_start_resumes(jhome: Home) -> None:
    jhome.start()
    n = 200
    j = start(jhome, "default", n=n, delay_s=0.01, every=10)
    wait_done_at_least(jhome, "default", j["id"], 20, key="checkpoint")
    jhome.stop()
    jhome.start()
    end = wait_state(jhome, "default", j["id"], "done", timeout=60)
    _contiguous(end["result"]["attempts"], n)
    assert len(end["result"]["attempts"]) == 2
    acts = [x[0] for x in actions(jhome, "default", j["id"])]
    assert acts == ["job.start", "job.interrupt", "job.resume", "job.finish"]


def test_a_kind_this_engine_lacks_stays_interrupted_and_can_be_cancelled(
    jhome: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    jhome.start()
    j = start(jhome, "default", n=100_000, delay_s=0.01, every=10)
    wait_done_at_least(jhome, "default", j["id"], 10, key="checkpoint")
    jhome.kill9()
    monkeypatch.delenv("MUSUBI_TEST_JOB_KINDS")
    assert "MUSUBI_TEST_JOB_KINDS" not in os.environ
    jhome.start()
    got = get(jhome, "default", j["id"])
    assert got["state"] == "interrupted"
    assert "job kind 'test.count' is not available in this engine" in got["error"]
    assert f"musubi jobs cancel {j['id']}" in got["error"]
    # Not a final state: cancelling closes it.
    assert jhome.client("default").post(f"/v1/jobs/{j['id']}/cancel")["state"] == "cancelled"
    jhome.stop()
    jhome.start()  # stays cancelled; nothing resumes
    assert get(jhome, "default", j["id"])["state"] == "cancelled"
    assert [x[0] for x in actions(jhome, "default", j["id"])] == ["job.start", "job.interrupt", "job.cancel"]


def test_progress_does_not_flood_the_journal(jhome: Home) -> None:
    # 20,000 progress reports and one checkpoint: a handful of group commits, not one per report.
    jhome.start()
    before = jhome.client("default").get("/v1/health")["commits"]
    j = start(jhome, "default", n=20_000, delay_s=0, every=20_000)
    wait_state(jhome, "default", j["id"], "done")
    commits = jhome.client("default").get("/v1/health")["commits"] - before
    # start, running, the checkpoint, the finish, plus one progress write per 5 s of running.
    assert commits <= 10, commits
