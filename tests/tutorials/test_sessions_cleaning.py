"""Tutorials and remote sessions (a session acts in its user's live sandboxes, nowhere else), and cleaning a
sandbox cancels what still runs in it (issue 18 gaps)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import Home, home_fixture
from tests.jobs.helpers import JOB_KINDS, KIND, wait_done_at_least
from tests.runs.helpers import wait
from tests.serve.helpers import actions, mint, raw
from tests.tutorials.test_engine import call, home, write_demo  # noqa: F401  (home: an engine with the demo)


def ok(h: Home, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    status, data = raw(h, method, path, body, **kw)
    assert status < 300, (status, data)
    return data


def audit_as(h: Home, tenant: str, token: str, prefix: str) -> list[dict[str, Any]]:
    """``tenant``'s audit events whose action starts with ``prefix``, read through the session ``token``."""
    evs = ok(h, "GET", "/v1/audit?limit=10000&ascending=1", tenant=tenant, token=token)
    return [e for e in evs if e["action"].startswith(prefix)]


def test_a_session_user_works_in_their_own_live_sandbox_only(home: Home) -> None:  # noqa: F811
    own = home.new_tenant("ses", {"mia": "member"})
    other = home.new_tenant("acme", {"mia": "member"})  # mia has a role there, but the session is not for it
    token = mint(home, "mia", own)["token"]
    s = ok(home, "POST", "/v1/tutorials/demo/start", token=token)
    sb = s["sandbox"]["tenant"]
    assert sb.startswith("tut-mia-") and s["completed_now"] == ["owner"]
    ok(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"}, token=token)
    # the step's own command, run through the session in the sandbox tenant
    ok(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, token=token, tenant=sb)
    who = ok(home, "GET", "/v1/whoami", token=token, tenant=sb)
    assert (who["user"], who["tenant"]) == ("mia", sb) and "owner" in who["roles"]
    assert ok(home, "POST", "/v1/tutorials/demo/check", {"step": "role"}, token=token)["ok"] is True
    created = audit_as(home, sb, token, "role.create")[-1]
    assert created["actor"] == "mia" and created["details"]["session"]
    used = audit_as(home, sb, token, "session.use")
    assert len(used) == 1 and used[0]["details"]["sandbox_of"] == own
    # another real tenant (even one mia belongs to) and another user's sandbox stay refused, audited
    bobs = call(home, "POST", "/v1/tutorials/demo/start", as_user="bob")["sandbox"]["tenant"]
    for t in (other, bobs):
        status, out = raw(home, "GET", "/v1/whoami", token=token, tenant=t)
        assert status == 403 and "is for tenant" in out["error"]["message"], out
        status, out = raw(home, "POST", "/v1/roles", {"name": "x", "permissions": ["specs.read"]}, token=token,
                          tenant=t)
        assert status == 403, out
    assert [e for e in actions(home, own, "session.use") if e["outcome"] == "denied"]
    # a cleaned sandbox is no longer lent
    ok(home, "POST", "/v1/tutorials/demo/reset", token=token)
    status, out = raw(home, "GET", "/v1/whoami", token=token, tenant=sb)
    assert status == 403, out


def test_reset_cancels_a_run_waiting_at_a_gate_in_the_sandbox(home: Home) -> None:  # noqa: F811
    sb = call(home, "POST", "/v1/tutorials/demo/start")["sandbox"]
    run = call(home, "POST", "/v1/runs", {"workflow": "tutorial", "feature": "save the cart"}, tenant=sb["tenant"],
               project=sb["project"])
    now = wait(home, sb["tenant"], run["id"], "waiting", "failed", "done", "stopped")
    assert now["pending_gate"] == "approve-spec", {k: now[k] for k in ("state", "reason", "stop_code") if k in now}
    call(home, "POST", "/v1/tutorials/demo/reset")
    acts = [e["action"] for e in home.audit(sb["tenant"])]
    assert "run.cancel" in acts and acts.index("run.cancel") < acts.index("tenant.suspend"), acts
    cancel = [e for e in home.audit(sb["tenant"]) if e["action"] == "run.cancel"][-1]
    assert cancel["outcome"] == "success" and cancel["resource"] == f"run:{run['id']}", cancel
    assert call(home, "POST", "/v1/audit/verify", {}, tenant=sb["tenant"])["ok"] is True


def test_finishing_cancels_a_run_still_going_in_the_sandbox(home: Home) -> None:  # noqa: F811
    sb = call(home, "POST", "/v1/tutorials/demo/start")["sandbox"]
    call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    call(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, tenant=sb["tenant"])
    call(home, "POST", "/v1/tutorials/demo/check", {"step": "role"})
    run = call(home, "POST", "/v1/runs", {"workflow": "tutorial", "feature": "save the cart"}, tenant=sb["tenant"],
               project=sb["project"])
    assert wait(home, sb["tenant"], run["id"], "waiting", "failed", "done", "stopped")["state"] == "waiting"
    done = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "last"})
    assert done["progress"]["state"] == "done", done
    acts = [e["action"] for e in home.audit(sb["tenant"])]
    assert acts.index("run.cancel") < acts.index("tutorial.finish") < acts.index("tenant.suspend"), acts


@pytest.fixture
def jhome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """An engine with the demo tutorial and the test job kind (a slow counting job)."""
    write_demo(tmp_path)
    env = {**JOB_KINDS, "MUSUBI_TUTORIALS_DIR": str(tmp_path)}
    with home_fixture(start=True, env=env, monkeypatch=monkeypatch) as h:
        yield h


def test_reset_cancels_a_job_in_progress_in_the_sandbox(jhome: Home) -> None:
    sb = call(jhome, "POST", "/v1/tutorials/demo/start")["sandbox"]
    job = call(jhome, "POST", "/v1/jobs", {"kind": KIND, "params": {"n": 100_000, "delay_s": 0.01}},
               tenant=sb["tenant"])
    wait_done_at_least(jhome, sb["tenant"], job["id"], 1)  # it is running
    call(jhome, "POST", "/v1/tutorials/demo/reset")
    evs = jhome.audit(sb["tenant"])
    acts = [e["action"] for e in evs]
    assert acts.index("job.cancel") < acts.index("tenant.suspend"), acts
    assert [e["resource"] for e in evs if e["action"] == "job.cancel"] == [f"job:{job['id']}"]
