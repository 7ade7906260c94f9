"""Runs across kill -9 and restarts, gates that survive them, and diffs applied only on approval."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.engine.helpers import Home, poll, wait_gone
from tests.runs.helpers import run_audit, script, sends, show, start, wait


def test_kill9_mid_run_resumes_without_paying_twice(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    script(rhome, hang=["3"])  # step 3's call never answers: the engine dies there
    run = start(rhome, t, "three")
    poll(lambda: len(sends(rhome)) == 2 and show(rhome, t, run["id"])["steps"][2]["status"] == "running", timeout=30)
    used = rhome.quota(t, "tokens", "day")["used"]
    assert used == 240
    rhome.kill9()
    script(rhome)  # the provider answers again
    rhome.start()
    done = wait(rhome, t, run["id"], "done", "failed", "stopped")
    assert done["state"] == "done", done
    keys = [s["key"] for s in sends(rhome)]
    # Steps 1 and 2 were sent once each, ever; step 3 once, after the restart.
    assert sorted(k.split(":")[1] for k in keys) == ["1", "2", "3"], keys
    assert rhome.quota(t, "tokens", "day")["used"] == 360
    assert done["attempts"] == 2
    assert any(e["action"] == "run.resume" for e in run_audit(rhome, t, run["id"]))


def test_kill9_after_the_request_left_before_its_sent_row_was_durable(rhome: Home) -> None:
    """The request goes out while its ``sent`` row's group commit is in flight (docs/runs.md#charge-once).
    A kill -9 in that window leaves no row for it: the resume sends it again under the same key, every
    completed call is charged exactly once, and what the ledger misses is that window's requests only."""
    t = rhome.new_tenant("run")
    script(rhome, die=["1:turn2"])  # the engine SIGKILLs itself as turn 2's request arrives
    pid = rhome.pid()
    run = start(rhome, t, "loop")
    poll(lambda: any(s.get("died") for s in sends(rhome)), timeout=30)
    wait_gone(pid)
    script(rhome)
    rhome.start()
    done = wait(rhome, t, run["id"], "done", "failed", "stopped")
    assert done["state"] == "done", done
    died = next(s["key"] for s in sends(rhome) if s.get("died"))
    assert died == f"{run['id']}:1:turn2:1"
    keys = [s["key"] for s in sends(rhome)]
    assert keys.count(died) == 2  # sent again: no row of it survived to give it a next attempt number
    resumed = next(e for e in run_audit(rhome, t, run["id"]) if e["action"] == "run.resume")
    interrupted = resumed["details"]["interrupted_calls"]
    assert died not in interrupted  # no row at all: not even an interrupted one
    # Turn 1's charge rode in the same group commit as turn 2's `sent` row: lost with it, its durable
    # `sent` row became `interrupted` and it was sent again.  Nothing else is ever sent twice.
    assert interrupted in ([], [f"{run['id']}:1:turn1:1"])
    rid = run["id"]
    final = {f"{rid}:1:turn{i}:{2 if f'{rid}:1:turn{i}:1' in interrupted else 1}" for i in range(1, 5)}
    assert set(keys) == {died, *interrupted, *final}
    # Every completed call charged once; what the provider billed beyond that is the window's requests.
    assert done["tokens"] == rhome.quota(t, "tokens", "day")["used"] == 4 * 120
    assert len(keys) * 120 - done["tokens"] == (1 + len(interrupted)) * 120


def _repo(tmp: Path) -> Path:
    (tmp / "app.py").write_text("def f():\n    return 1\n")
    return tmp


DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n"


def test_gate_survives_restart_is_never_asked_again_and_diff_applies(rhome: Home, tmp_path: Path) -> None:
    t = rhome.new_tenant("run")
    root = _repo(tmp_path)
    rhome.client(t).post("/v1/projects", {"name": "app", "path": str(root)})
    script(rhome, replies={"2": [DIFF]})
    status, run = rhome.raw("POST", "/v1/runs", {"workflow": "gated", "feature": "x"}, tenant=t, project="app")
    assert status == 201, run
    r = wait(rhome, t, run["id"], "waiting")
    assert r["pending_gate"] == "change" and r["approvals"][0]["shown"] == DIFF
    sent_before = len(sends(rhome))
    rhome.stop()  # every client gone, the engine stopped: the gate stays pending
    rhome.start()
    r = wait(rhome, t, run["id"], "waiting")
    assert len(sends(rhome)) == sent_before  # nothing before the gate ran again
    # Applying before approval is refused; approving records who and what they saw.
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/apply", {}, tenant=t)
    assert status == 409 and body["error"]["code"] == "artefact_not_approved"
    sha = r["approvals"][0]["shown_sha256"]
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/approve", {"shown_sha256": sha, "comment": "ok"},
                             tenant=t)
    assert status == 200, body
    done = wait(rhome, t, run["id"], "done", "failed")
    assert done["state"] == "done", done
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/approve", {"gate": "change"}, tenant=t)
    assert status == 409 and body["error"]["code"] == "gate_answered"
    ev = next(e for e in run_audit(rhome, t, run["id"]) if e["action"] == "run.approve")
    assert ev["details"]["shown_sha256"] == sha and ev["actor"]
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/apply", {}, tenant=t)
    assert status == 200, body
    assert (root / "app.py").read_text() == "def f():\n    return 2\n"
    writes = [e for e in rhome.audit(t) if e["action"] == "run.write"]
    assert writes and writes[0]["details"]["path"] == "app.py"


def test_conflicting_diff_is_refused_and_nothing_is_written(rhome: Home, tmp_path: Path) -> None:
    t = rhome.new_tenant("run")
    root = _repo(tmp_path)
    rhome.client(t).post("/v1/projects", {"name": "app", "path": str(root)})
    escape = "--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x = 1\n"
    script(rhome, replies={"1": [DIFF]})
    status, run = rhome.raw("POST", "/v1/runs", {"workflow": "gated_fast", "feature": "x"}, tenant=t, project="app")
    wait(rhome, t, run["id"], "waiting")
    rhome.raw("POST", f"/v1/runs/{run['id']}/approve", {}, tenant=t)
    wait(rhome, t, run["id"], "done")
    (root / "app.py").write_text("def f():\n    return 7\n")  # the file moved on: the diff conflicts
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/apply", {}, tenant=t)
    assert status == 409 and body["error"]["code"] == "apply_conflict", body
    assert (root / "app.py").read_text() == "def f():\n    return 7\n"
    from core.orchestration import gitapply

    try:
        gitapply.apply(root, escape)
        raise AssertionError("a path outside the root was applied")
    except gitapply.ApplyRefused as exc:
        assert "outside the project root" in str(exc)
    assert not (tmp_path.parent / "evil.py").exists()
    if subprocess.run(["git", "--version"], capture_output=True).returncode == 0:
        # Same verdict as git itself on the same conflict.
        chk = subprocess.run(["git", "apply", "--check", "-"], input=DIFF.encode(), cwd=root, capture_output=True)
        assert chk.returncode != 0


def test_gate_timeout_fails_closed(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "gated_fast")
    r = wait(rhome, t, run["id"], "stopped", "done", "failed")
    assert r["state"] == "stopped" and r["stop_code"] == "gate_timeout", r
    assert r["approvals"][0]["state"] == "timed_out" and r["approvals"][0]["decision"] is None
    ev = [e for e in run_audit(rhome, t, run["id"]) if e["action"] == "run.gate_timeout"]
    assert ev and ev[0]["outcome"] == "error" and json.dumps(ev).count("approve") == 0


def test_a_pending_gate_survives_kill9_and_its_decision_is_kept(rhome: Home) -> None:
    t = rhome.new_tenant("run")
    run = start(rhome, t, "gated")
    wait(rhome, t, run["id"], "waiting")
    sent = len(sends(rhome))
    rhome.kill9()
    rhome.start()
    r = wait(rhome, t, run["id"], "waiting")
    assert r["pending_gate"] == "change" and len(sends(rhome)) == sent  # the same gate; nothing re-sent
    status, body = rhome.raw("POST", f"/v1/runs/{run['id']}/reject", {"comment": "no"}, tenant=t)
    assert status == 200, body
    r = wait(rhome, t, run["id"], "failed", "done")
    assert r["stop_code"] == "rejected" and r["approvals"][0]["decided_by"]
    rhome.kill9()
    rhome.start()
    r = show(rhome, t, run["id"])
    assert r["approvals"][0]["state"] == "rejected" and r["state"] == "failed"  # never asked again


def test_the_run_goes_on_when_every_client_leaves(rhome: Home) -> None:
    import os
    import signal
    import sys

    t = rhome.new_tenant("run")
    script(rhome, delay_s=0.3)
    env = {**os.environ, "MUSUBI_HOME": str(rhome.dir)}
    follower = subprocess.Popen([sys.executable, "-m", "tui", "--tenant", t, "run", "three", "--feature", "x"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rid = poll(lambda: next(iter(rhome.client(t).get("/v1/runs")), None), timeout=30)["id"]
    follower.send_signal(signal.SIGKILL)  # the only client vanishes mid-run
    follower.wait()
    done = wait(rhome, t, rid, "done", "failed", "stopped")
    assert done["state"] == "done" and len(sends(rhome)) == 3
