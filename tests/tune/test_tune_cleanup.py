"""Old vector folders (docs/finetune.md, "Old vector folders"): after a switch commits, the folders serving
no search are removed; a kill -9 between the switch and the deletion, or during it, is finished at the
next start, and search answers throughout.  Real engine, fake embedder, ``MUSUBI_TEST_TUNE_GAIN``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.tune import cleanup
from tests.cli.helpers import Cli, cli_fixture
from tests.engine.helpers import poll
from tests.index.helpers import FAKE_EMBEDDER

from .test_tune_cli import GAIN, _repo

KILL_AT = "MUSUBI_TEST_TUNE_KILL_AT"
QUERY = "vector index of a project"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cli, Path]]:
    monkeypatch.setenv(GAIN, "0.05")
    monkeypatch.delenv(KILL_AT, raising=False)
    repo = _repo(tmp_path)
    with cli_fixture(env=FAKE_EMBEDDER) as c:
        c.ok("project", "add", str(repo), "--name", "sc")
        c.ok("index", cwd=str(repo))
        yield c, repo


def _code(c: Cli) -> Path:
    return next(Path(c.home).glob("tenants/*/code/sc"))


def _on_disk(c: Cli) -> list[str]:
    """The project's vector folders and trash folders, by name."""
    return sorted(p.name for p in _code(c).iterdir() if p.name.startswith(("vectors", cleanup.TRASH_PREFIX)))


def _search_ok(c: Cli, repo: Path) -> None:
    hits = c.js("search", QUERY, cwd=str(repo))
    assert hits["results"] and hits["dense_coverage"] == 1.0, hits


def test_activation_rollback_activation_keeps_only_the_serving_folder(cli: tuple[Cli, Path]) -> None:
    c, repo = cli
    assert _on_disk(c) == ["vectors"]
    _search_ok(c, repo)
    assert c.js("tune", "embedder", "--budget", "60", cwd=str(repo))["result"]["state"] == "active"
    assert _on_disk(c) == ["vectors-t1"]  # the base model's folder serves nothing now
    _search_ok(c, repo)
    listed = c.js("tune", "list", cwd=str(repo))
    v1 = listed["versions"][0]
    assert listed["base_vectors_bytes"] is None and v1["vectors_bytes"] > 0 and v1["files_bytes"] > 0
    assert v1["vectors_bytes"] == cleanup.folder_bytes(_code(c) / "vectors-t1")
    assert "disk: 1 vector folder(s)" in c.ok("tune", "list", cwd=str(repo)).out

    # Rollback to the base model: its folder was removed, so the job re-embeds it (as activation does).
    job = c.js("tune", "rollback", cwd=str(repo))
    assert job["result"] == {"version": 0, "serving": 0, "rollback": True}
    assert _on_disk(c) == ["vectors"]
    _search_ok(c, repo)
    listed = c.js("tune", "list", cwd=str(repo))
    assert listed["base_vectors_bytes"] > 0 and listed["versions"][0]["vectors_bytes"] is None

    assert c.js("tune", "activate", "1", cwd=str(repo))["state"] == "done"
    assert _on_disk(c) == ["vectors-t1"]
    _search_ok(c, repo)

    # A second version: v1's folder goes; rolling back to v1 re-embeds it while v2's folder serves.
    assert c.js("tune", "embedder", "--budget", "60", cwd=str(repo))["result"]["version"] == 2
    assert _on_disk(c) == ["vectors-t2"]
    assert c.js("tune", "rollback", cwd=str(repo))["result"]["version"] == 1
    assert _on_disk(c) == ["vectors-t1"]
    assert [v["state"] for v in c.js("tune", "list", cwd=str(repo))["versions"]] == ["retired", "active"]
    _search_ok(c, repo)


def _killed(c: Cli) -> None:
    """Wait until the engine has killed itself and its lock is free (a busy engine may miss a ping)."""
    from core.lifecycle import lock_holder

    assert poll(lambda: not lock_holder(c.paths)[0], timeout=120, interval=0.1)


def _restart(c: Cli, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Start the engine again, with ``env`` (a kill point), or without a kill point after a kill."""
    if env:
        c.stop()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if not env:
        monkeypatch.delenv(KILL_AT, raising=False)
    c.ok("engine", "start")


def test_kill_9_between_the_switch_and_the_deletion(cli: tuple[Cli, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    c, repo = cli
    _restart(c, monkeypatch, **{KILL_AT: "switched"})
    jid = c.js("tune", "embedder", "--detach", cwd=str(repo))["id"]
    _killed(c)
    assert _on_disk(c) == ["vectors", "vectors-t1"]  # switched (committed), nothing deleted yet
    _restart(c, monkeypatch)
    assert _on_disk(c) == ["vectors-t1"]  # the start removed the folder that serves nothing
    done = poll(lambda: (j := c.js("jobs", "show", jid))["state"] in ("done", "failed") and j, timeout=120)
    assert done["state"] == "done" and done["result"]["version"] == 1, done
    assert c.js("tune", "list", cwd=str(repo))["serving"] == 1
    _search_ok(c, repo)


def test_kill_9_during_the_deletion(cli: tuple[Cli, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    c, repo = cli
    assert c.js("tune", "embedder", cwd=str(repo))["result"]["state"] == "active"
    _restart(c, monkeypatch, **{KILL_AT: "discarded"})
    jid = c.js("tune", "rollback", "--detach", cwd=str(repo))["id"]
    _killed(c)
    left = _on_disk(c)  # renamed away, not yet deleted: no folder under a name the engine would open
    assert left[1] == "vectors" and len(left) == 2 and left[0].startswith(cleanup.TRASH_PREFIX + "vectors-t1-"), left
    manifest = _code(c) / "vectors" / "vectors.json"
    written = manifest.stat().st_mtime_ns
    _restart(c, monkeypatch)
    assert poll(lambda: _on_disk(c) == ["vectors"], timeout=60, interval=0.1)  # the start finished the deletion
    done = poll(lambda: (j := c.js("jobs", "show", jid))["state"] in ("done", "failed") and j, timeout=120)
    assert done["state"] == "done" and done["result"] == {"version": 0, "serving": 0, "rollback": True}, done
    assert done["attempts"] == 2
    assert manifest.stat().st_mtime_ns == written  # the resumed job had switched: it cleaned up, re-embedded nothing
    assert c.js("tune", "list", cwd=str(repo))["serving"] == 0
    _search_ok(c, repo)


def test_cleanup_steps(tmp_path: Path) -> None:
    """Only vector folders are candidates; a discarded one is renamed away at once and purged later."""
    import os

    code = tmp_path / "code"
    for name in ("vectors", "vectors-t1", "vectors-t2", "lexical", "vectors-tx"):
        (code / name).mkdir(parents=True)
        (code / name / "f").write_bytes(b"x" * 10)
    assert cleanup.stale(code, {"vectors-t2"}) == ["vectors", "vectors-t1"]
    trash = cleanup.discard(code, "vectors-t1")
    assert trash is not None and trash.name.startswith(".deleting-vectors-t1-") and not (code / "vectors-t1").exists()
    assert cleanup.discard(code, "vectors-t1") is None  # already gone
    assert cleanup.stale(code, {"vectors-t2"}) == ["vectors"]  # a trash folder is never a vector folder
    assert cleanup.purge(code) == 10 and not trash.exists()
    assert sorted(os.listdir(code)) == ["lexical", "vectors", "vectors-t2", "vectors-tx"]
    assert cleanup.stale(tmp_path / "missing", set()) == [] and cleanup.purge(tmp_path / "missing") == 0


def test_what_a_sweep_keeps() -> None:
    """The serving folder, the folder an unfinished activation or tuning writes; an index job keeps nothing
    more (it writes the serving folder: it chooses it under the lock a switch holds)."""
    from types import SimpleNamespace

    from core.tune.service import TuneEmbedService

    def job(kind: str, state: str, project: str = "sc", **kw: object) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, state=state, tenant="t", project=project,
                               params=kw.get("params", {}), checkpoint=kw.get("checkpoint"))

    svc = TuneEmbedService.__new__(TuneEmbedService)
    svc.jobs = SimpleNamespace(jobs={})  # type: ignore[assignment]
    assert svc._keep("t", "sc", "vectors-t1") == {"vectors-t1"}
    svc.jobs.jobs = {"a": job("tune.activate", "interrupted", params={"version": 3}),
                     "b": job("tune.embed", "running", checkpoint={"phase": "reembed", "version": 4}),
                     "c": job("tune.activate", "done", params={"version": 5}),
                     "d": job("index", "running", project="other"),
                     "e": job("tune.embed", "queued", checkpoint=None)}
    assert svc._keep("t", "sc", "vectors") == {"vectors", "vectors-t3", "vectors-t4"}
    svc.jobs.jobs["f"] = job("index", "running")
    assert svc._keep("t", "sc", "vectors") == {"vectors", "vectors-t3", "vectors-t4"}
