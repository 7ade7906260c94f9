"""Starting and watching test jobs."""

from __future__ import annotations

from typing import Any

from tests.engine.helpers import Home, poll

KIND = "test.count"
JOB_KINDS = {"MUSUBI_TEST_JOB_KINDS": "1"}  # the engine test hook that registers KIND


def start(
    h: Home, tenant: str, as_user: str | None = None, project: str | None = None, **params: Any
) -> dict[str, Any]:
    status, body = h.raw("POST", "/v1/jobs", {"kind": KIND, "params": params}, tenant=tenant, as_user=as_user,
                         project=project)
    assert status == 201, body
    return dict(body)


def get(h: Home, tenant: str, job_id: str, as_user: str | None = None) -> dict[str, Any]:
    status, body = h.raw("GET", f"/v1/jobs/{job_id}", tenant=tenant, as_user=as_user)
    assert status == 200, body
    return dict(body)


def wait_state(h: Home, tenant: str, job_id: str, *states: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        j = get(h, tenant, job_id)
        return j if j["state"] in states else None

    return dict(poll(check, timeout=timeout))


def wait_done_at_least(h: Home, tenant: str, job_id: str, n: int, key: str = "done") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        j = get(h, tenant, job_id)
        v = j["progress"]["done"] if key == "done" else (j["checkpoint"] or {}).get("count", 0)
        return j if v >= n else None

    return dict(poll(check, timeout=30))


def let_steps_pass(h: Home, tenant: str, steps: int = 30) -> None:
    """Wait until the engine has demonstrably run ``steps`` counting steps: a witness job counts them
    (then is cancelled).  A stopped job that was still running would have moved as far meanwhile;
    a wall-clock sleep proves nothing on a loaded machine."""
    w = start(h, tenant, n=100_000, delay_s=0.01, every=50)
    wait_done_at_least(h, tenant, w["id"], steps)
    h.client(tenant).post(f"/v1/jobs/{w['id']}/cancel")
    wait_state(h, tenant, w["id"], "cancelled")


def actions(h: Home, tenant: str, job_id: str) -> list[tuple[str, str, str]]:
    """(action, actor, outcome) of the job's audit events, oldest first."""
    return [(e["action"], e["actor"], e["outcome"]) for e in h.audit(tenant) if e["resource"] == f"job:{job_id}"]
