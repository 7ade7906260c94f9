"""``musubi jobs list|show|cancel`` and the follower (tui/follow.py), through the real CLI."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.client import EngineClient, Identity, ping
from tests.cli.helpers import MUSUBI, REPO, Cli, base_env, cli_fixture
from tests.engine.helpers import poll
from tests.jobs.helpers import JOB_KINDS
from tui.follow import follow
from tui.output import CliState

SLOW: dict[str, Any] = {"n": 100_000, "delay_s": 0.01, "every": 50}


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with cli_fixture(env=JOB_KINDS) as c:
        yield c


def api(cli: Cli, tenant: str = "default", as_user: str | None = None) -> EngineClient:
    return EngineClient(cli.paths, Identity(tenant=tenant, as_user=as_user, cwd="/"), autostart=False)


def start(cli: Cli, tenant: str = "default", as_user: str | None = None, **params: Any) -> dict[str, Any]:
    return dict(api(cli, tenant, as_user).post("/v1/jobs", {"kind": "test.count", "params": params}))


def new_tenant(cli: Cli, members: dict[str, str] | None = None) -> str:
    name = f"cj{time.monotonic_ns() % 10**9}"
    cli.ok("tenant", "create", name)
    for user, role in (members or {}).items():
        cli.ok("--tenant", name, "member", "add", user, "--role", role)
    return name


def test_list_show_and_follow(cli: Cli) -> None:
    t = new_tenant(cli)
    assert cli.ok("--tenant", t, "jobs", "list").out.strip() == "no jobs"
    assert cli.ok("--tenant", t, "jobs", "list", "--json").json() == []
    j = start(cli, t, n=30, delay_s=0.01, every=10)
    r = cli.ok("--tenant", t, "jobs", "show", j["id"], "--follow")
    assert r.out.strip() == f"job {j['id']} (test.count) done: 30/30 steps."
    rows = cli.ok("--tenant", t, "jobs", "list", "--state", "done", "--json").json()
    assert [x["id"] for x in rows] == [j["id"]]
    human = cli.ok("--tenant", t, "jobs", "list").out
    assert j["id"] in human and "30/30 steps" in human and "done" in human
    shown = cli.ok("--tenant", t, "jobs", "show", j["id"], "--json").json()
    assert shown["state"] == "done" and shown["result"]["count"] == 30
    assert "checkpoint" in cli.ok("--tenant", t, "jobs", "show", j["id"]).out
    # --follow --json prints only the final job.
    assert cli.ok("--tenant", t, "jobs", "show", j["id"], "--follow", "--json").json()["state"] == "done"


def test_cancel_and_a_follower_of_a_job_that_does_not_finish(cli: Cli) -> None:
    t = new_tenant(cli)
    j = start(cli, t, **SLOW)
    poll(lambda: api(cli, t).get(f"/v1/jobs/{j['id']}")["progress"]["done"] > 0)
    r = cli.ok("--tenant", t, "jobs", "cancel", j["id"])
    assert r.out.startswith(f"cancelling job {j['id']} (test.count)") or r.out.startswith(f"cancelled job {j['id']}")
    follow_r = cli("--tenant", t, "jobs", "show", j["id"], "--follow")
    assert follow_r.rc == 1, str(follow_r)
    assert f"job {j['id']} (test.count) cancelled at" in follow_r.err
    again = cli("--tenant", t, "jobs", "cancel", j["id"], "--json")
    assert again.rc == 1 and again.json()["error"]["code"] == "job_finished"
    failing = start(cli, t, n=10, delay_s=0, fail_at=5)
    r = cli("--tenant", t, "jobs", "show", failing["id"], "--follow")
    assert r.rc == 1 and "failed at" in r.err and "failing at step 5" in r.err


@pytest.mark.parametrize(("args", "rc", "says"), [
    (("jobs", "show", "nope"), 2, "'nope' is not a job id: job ids look like j-0123456789ab"),
    (("jobs", "cancel", "../x"), 2, "is not a job id"),
    (("jobs", "show", "j-000000000000"), 1, "no job j-000000000000 in tenant"),
    (("jobs", "cancel", "j-000000000000"), 1, "no job j-000000000000"),
    (("jobs", "list", "--state", "bogus"), 2, "unknown job state bogus"),
    (("jobs", "list", "--limit", "0"), 2, "limit"),
])
def test_bad_input_is_a_clear_message_with_its_exit_code(cli: Cli, args: tuple[str, ...], rc: int, says: str) -> None:
    r = cli(*args)
    assert r.rc == rc, str(r)
    assert says in r.err and "Traceback" not in r.err
    j = cli(*args, "--json")
    assert j.rc == rc and says in j.json()["error"]["message"]


def test_permission_denied_is_exit_4(cli: Cli) -> None:
    t = new_tenant(cli, {"vic": "viewer", "mel": "member"})
    j = start(cli, t, as_user="mel", **SLOW)
    r = cli("--tenant", t, "--as", "vic", "jobs", "cancel", j["id"])
    assert r.rc == 4, str(r)
    assert "lacks 'index.build'" in r.err
    assert cli.ok("--tenant", t, "--as", "vic", "jobs", "show", j["id"], "--json").json()["state"] == "running"
    assert cli.ok("--tenant", t, "--as", "mel", "jobs", "cancel", j["id"], "--json").json()["cancelled_by"] == "mel"


def _as_a_shell_starts_it() -> None:
    """In the child, before exec: SIGINT on and unblocked, as an interactive shell starts a command.  A child
    inherits an ignored or blocked SIGINT, and Python then keeps it so (no KeyboardInterrupt): a suite started
    in the background by a non-interactive shell (``( make test & )``) runs with SIGINT ignored, and there
    the follower ran on after its SIGINT."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _follower(cli: Cli, tenant: str, job_id: str) -> subprocess.Popen[str]:
    env = base_env(cli.home)
    return subprocess.Popen([*MUSUBI, "--tenant", tenant, "jobs", "show", job_id, "--follow"], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_a_shell_starts_it)


def _subscribers(cli: Cli) -> int:
    info = ping(cli.paths)
    assert info
    return int(info["subscribers"])


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGHUP, 1), (signal.SIGINT, 130)])
def test_the_job_outlives_its_follower(cli: Cli, sig: signal.Signals, rc: int) -> None:
    t = new_tenant(cli)
    # long enough that it cannot end before the follower is signalled, however loaded the machine
    j = start(cli, t, n=1_000_000, delay_s=0.01, every=100)
    before = _subscribers(cli)
    p = _follower(cli, t, j["id"])
    try:
        poll(lambda: _subscribers(cli) > before, timeout=30)  # following: subscribed to the stream
        status = Path(f"/proc/{p.pid}/status")  # how the follower treats signals, for a failure's message
        sigs = [ln for ln in status.read_text().splitlines() if ln.startswith(("SigBlk", "SigIgn", "SigCgt"))] \
            if status.exists() else []
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == rc, (out, err, sigs)
    assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert f"stopped following job {j['id']}; it keeps running in the engine" in err
    # The job was not cancelled: it keeps counting after its follower left.
    def job() -> dict[str, Any]:
        return dict(api(cli, t).get(f"/v1/jobs/{j['id']}"))

    left_at = job()["progress"]["done"]
    later = poll(lambda: (x := job())["progress"]["done"] > left_at and x, timeout=30)
    assert later["state"] == "running" and later["cancelled_by"] is None
    cli.ok("--tenant", t, "jobs", "cancel", j["id"])


def test_detach_prints_the_job_at_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job = {"id": "j-0123456789ab", "kind": "index", "state": "queued"}
    assert follow(CliState(home=str(tmp_path), json=True), job, detach=True) == job
    assert '"id": "j-0123456789ab"' in capsys.readouterr().out
    follow(CliState(home=str(tmp_path)), job, detach=True)
    out = capsys.readouterr().out
    assert out.startswith("started job j-0123456789ab (index); it runs in the engine.")
    assert "musubi jobs cancel j-0123456789ab" in out
