"""``musubi tune delete VERSION`` (docs/finetune.md, "Deleting a version"): a version's files go for good, its row
stays as ``deleted``; the serving version, one a job still works on, an unknown one and the base model are
refused and nothing changes; a kill -9 between the row's commit and the files' removal is finished at the next
start.  Real engine, fake embedder, ``MUSUBI_TEST_TUNE_GAIN`` (no model is trained)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import BadRequest, Conflict, NotFound
from core.tune import cleanup
from tests.cli.helpers import Cli
from tests.engine.helpers import poll

from . import test_tune_cleanup
from .test_tune_cleanup import KILL_AT, _code, _killed, _on_disk
from .test_tune_cli import GAIN
from .test_tune_race import _paused, _restart

cli = test_tune_cleanup.cli  # the fixture: the engine (fake embedder, a tuning gain of 0.05), a project indexed


def _tuned(c: Cli) -> Path:
    return next(Path(c.home).glob("tenants/*/tuned/sc"))


def _listed(c: Cli, repo: Path) -> dict[int, dict[str, Any]]:
    return {v["version"]: v for v in c.js("tune", "list", cwd=str(repo))["versions"]}


def _error(r: Any) -> dict[str, Any]:
    return dict(json.loads(r.out)["error"])


def test_delete_refusals_then_deletions(cli: tuple[Cli, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    c, repo = cli
    here = {"cwd": str(repo)}
    assert c.js("tune", "embedder", **here)["result"]["state"] == "active"  # v1
    assert c.js("tune", "embedder", **here)["result"]["state"] == "active"  # v2; v1 retired
    assert {v: r["state"] for v, r in _listed(c, repo).items()} == {2: "active", 1: "retired"}
    before = _listed(c, repo)

    # Refusals: each says what to do, with its exit code, and changes nothing.
    active = c.fails(1, "tune", "delete", "2", "--json", **here)
    assert _error(active)["code"] == "conflict" and "musubi tune rollback" in _error(active)["message"]
    unknown = c.fails(1, "tune", "delete", "9", **here)
    assert "no tuned embedder version 9" in unknown.err and "musubi tune list" in unknown.err
    base = c.fails(2, "tune", "delete", "0", "--json", **here)
    assert _error(base)["field"] == "version" and "base model" in _error(base)["message"]
    c.fails(2, "tune", "delete", "two", **here)
    assert "empty" in c.fails(2, "tune", "delete", "", **here).err  # not the engine's "no such route"
    c.ok("member", "add", "vic", "--role", "viewer")
    denied = c.fails(4, "--as", "vic", "tune", "delete", "1", **here)
    assert "embedder.tune" in denied.err
    assert _listed(c, repo) == before and (_tuned(c) / "v1" / "model").is_dir()

    # A job still working on the version: refused, naming the job and "cancel it first".
    _restart(c, monkeypatch, "reembedded")
    jid = c.js("tune", "activate", "1", "--detach", **here)["id"]
    gate = _paused(c, "reembedded")
    busy = c.fails(1, "tune", "delete", "1", **here)
    assert jid in busy.err and "cancel it first" in busy.err
    gate.unlink()
    assert poll(lambda: c.js("jobs", "show", jid)["state"] == "done", timeout=120, interval=0.1)
    assert {v: r["state"] for v, r in _listed(c, repo).items()} == {2: "retired", 1: "active"}

    # Deleted: the files go, the row stays as the record of what it was trained on.
    _restart(c, monkeypatch, None, **{GAIN: "-0.05"})
    assert c.js("tune", "embedder", **here)["result"]["state"] == "rejected"  # v3
    v3 = _listed(c, repo)[3]
    assert v3["files_bytes"] > 0
    gone = c.js("tune", "delete", "3", **here)
    assert gone == {"project": "sc", "version": 3, "state": "deleted", "freed_bytes": v3["files_bytes"]}
    assert not (_tuned(c) / "v3").exists()
    assert poll(lambda: not any(_tuned(c).glob(cleanup.TRASH_PREFIX + "*")), timeout=30, interval=0.05)
    row = _listed(c, repo)[3]
    assert row["state"] == "deleted" and row["files_bytes"] == 0 and row["vectors_bytes"] is None
    assert {k: row[k] for k in ("pairs_sha256", "pairs", "tuned", "decision")} == \
        {k: v3[k] for k in ("pairs_sha256", "pairs", "tuned", "decision")}
    assert "deleted" in c.ok("tune", "list", **here).out
    events = c.js("audit", "list", "--action", "tune.delete")
    assert [(e["outcome"], e["actor"]) for e in events] == [("success", getpass.getuser()), ("denied", "vic")], events
    assert events[0]["details"]["version"] == 3 and events[0]["details"]["was"] == "rejected"
    again = c.fails(1, "tune", "delete", "3", **here)
    assert "already deleted" in again.err
    refused = c.fails(1, "tune", "activate", "3", **here)
    assert "was deleted" in refused.err and _listed(c, repo)[3]["state"] == "deleted"

    # kill -9 right after the row's commit: the next start removes the files.
    _restart(c, monkeypatch, None, **{KILL_AT: "deleted"})
    c("tune", "delete", "2", **here)  # the engine dies before it answers
    _killed(c)
    assert (_tuned(c) / "v2" / "model").is_dir()  # committed, not yet removed
    (_tuned(c) / f"{cleanup.TRASH_PREFIX}v9-0a1b2c3d" / "model").mkdir(parents=True)  # as a kill mid-purge leaves
    test_tune_cleanup._restart(c, monkeypatch)
    assert poll(lambda: not (_tuned(c) / "v2").exists() and not any(_tuned(c).glob(cleanup.TRASH_PREFIX + "*")),
                timeout=60, interval=0.05)
    listed = _listed(c, repo)
    assert listed[2]["state"] == "deleted" and listed[2]["files_bytes"] == 0
    # v2 served before v1: rolling back to it is refused, saying what else to do.
    back = c.fails(1, "tune", "rollback", **here)
    assert "was deleted" in back.err and "musubi tune activate 0" in back.err
    assert c.js("tune", "list", **here)["serving"] == 1 and _on_disk(c) == ["vectors-t1"]
    assert (_code(c) / "vectors-t1").is_dir() and (_tuned(c) / "v1" / "model").is_dir()


# -- the refusal rules without an engine ---------------------------------------------------------------------------


def _svc(rows: list[dict[str, Any]], jobs: dict[str, Any]) -> Any:
    from core.tune.service import TuneEmbedService

    svc = TuneEmbedService.__new__(TuneEmbedService)
    svc.jobs = SimpleNamespace(jobs=jobs)  # type: ignore[assignment]
    svc._rows = {("t", "sc"): rows}
    return svc


def _job(jid: str, kind: str, state: str, **kw: Any) -> SimpleNamespace:
    return SimpleNamespace(id=jid, kind=kind, state=state, tenant="t", project="sc", params=kw.get("params", {}),
                           checkpoint=kw.get("checkpoint"))


def test_what_may_be_deleted() -> None:
    rows = [{"version": 1, "state": "retired", "job_id": "j1"}, {"version": 2, "state": "training", "job_id": "j2"},
            {"version": 3, "state": "active", "job_id": "j3"}, {"version": 4, "state": "deleted", "job_id": "j4"},
            {"version": 5, "state": "ready", "job_id": "j5"}]
    svc = _svc(rows, {"j1": _job("j1", "tune.embed", "done"), "j2": _job("j2", "tune.embed", "interrupted"),
                      "a": _job("a", "tune.activate", "queued", params={"version": 5})})
    assert svc._deletable("t", "sc", 1) is rows[0]
    with pytest.raises(BadRequest, match="base model"):
        svc._deletable("t", "sc", 0)
    with pytest.raises(NotFound, match=r"no tuned embedder version 6 \(versions: 1, 2, 3, 4, 5\)"):
        svc._deletable("t", "sc", 6)
    with pytest.raises(Conflict, match="job j2 .tune.embed. is still interrupted.*musubi jobs cancel j2"):
        svc._deletable("t", "sc", 2)  # it resumes at the next start: cancel it first
    with pytest.raises(Conflict, match="serves search"):
        svc._deletable("t", "sc", 3)
    with pytest.raises(Conflict, match="already deleted"):
        svc._deletable("t", "sc", 4)
    with pytest.raises(Conflict, match="job a .tune.activate. is still queued"):
        svc._deletable("t", "sc", 5)
    svc.jobs.jobs["a"].state = "cancelled"
    assert svc._deletable("t", "sc", 5) is rows[4]
    with pytest.raises(NotFound, match=r"versions: none yet"):
        _svc([], {})._deletable("t", "sc", 1)
