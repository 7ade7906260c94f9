"""``musubi tune embedder|list|activate|rollback`` against a real engine (fake embedder, MUSUBI_TEST_TUNE_GAIN).

The trainer runs as the test hook (no torch; it reports the gain the variable gives over the base
model's measures, which are real measures of the fake embedder on the project's held-out pairs);
mining, the rule, versioning, re-embedding into a folder of its own and the switch all run for real.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.tune.train import DEFAULTS
from tests.cli.helpers import Cli, cli_fixture
from tests.engine.helpers import poll
from tests.index.helpers import FAKE_EMBEDDER, git

from . import fixture

ROOT = Path(__file__).resolve().parents[2]
GAIN = "MUSUBI_TEST_TUNE_GAIN"


def _repo(base: Path) -> Path:
    """A project with enough docstrings for training and held-out pairs (copies of our search code)."""
    repo = base / "searchcode"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for f in sorted((ROOT / "core" / "rag").glob("*.py")):
        shutil.copy(f, repo / f.name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "import the search code")
    return repo


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cli, Path]]:
    monkeypatch.setenv(GAIN, "0.05")
    repo = _repo(tmp_path)
    with cli_fixture(env=FAKE_EMBEDDER) as c:
        c.ok("project", "add", str(repo), "--name", "sc")
        c.ok("index", cwd=str(repo))
        yield c, repo


def _status(c: Cli, repo: Path) -> dict[str, object]:
    from core.api import calls
    from core.client import EngineClient
    from core.wire import Identity

    client = EngineClient(c.paths, Identity(cwd=str(repo)), autostart=False)
    return dict(client.call(calls.index_status()))


def _restart_with_gain(c: Cli, monkeypatch: pytest.MonkeyPatch, gain: str) -> None:
    c.stop()
    monkeypatch.setenv(GAIN, gain)  # the next command starts an engine that reads it


def test_better_activated_worse_refused_rollback_restores(cli: tuple[Cli, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    c, repo = cli
    job = c.js("tune", "embedder", "--budget", "60", cwd=str(repo))
    assert job["state"] == "done" and job["kind"] == "tune.embed"
    r = job["result"]
    assert r["version"] == 1 and r["state"] == "active" and r["decision"].startswith("activated: R@10")
    assert r["tuned"]["r10"] == pytest.approx(min(1.0, r["current"]["r10"] + 0.05), abs=1e-4)
    assert sum(r["pairs"]["train"].values()) >= 16 and sum(r["pairs"]["held_out"].values()) >= 8
    listed = c.js("tune", "list", cwd=str(repo))
    assert listed["serving"] == 1 and [v["state"] for v in listed["versions"]] == ["active"]
    v1 = listed["versions"][0]
    assert len(v1["pairs_sha256"]) == 64 and v1["model_id"].startswith("model@")
    # the version records the trainer's settings it was trained with, and the budget asked for
    assert v1["params"] == {**{k: DEFAULTS[k] for k in ("epochs", "batch", "lr", "seed", "interpolate")},
                            "budget_s": 60}
    home = Path(c.home)
    tuned = next(home.glob("tenants/*/tuned/sc/v1"))
    assert (tuned / "pairs.json").is_file() and (tuned / "model" / "modules.json").is_file()
    vec = next(home.glob("tenants/*/code/sc"))
    assert (vec / "vectors-t1" / "vectors.json").is_file()
    assert not (vec / "vectors").exists()  # the base model's folder serves nothing now: removed
    assert _status(c, repo)["model"] == "fake-model@dim256"  # the index now names the tuned model
    hits = c.js("search", "vector index of a project", cwd=str(repo))
    assert hits["results"] and hits["dense_coverage"] == 1.0, hits  # served from the tuned model's folder
    # A later index run keeps using the tuned model (no rebuild: the model ids agree).
    assert c.js("index", cwd=str(repo))["result"]["rebuilt"] is False

    _restart_with_gain(c, monkeypatch, "-0.05")
    job = c.js("tune", "embedder", cwd=str(repo))
    r = job["result"]
    assert r["version"] == 2 and r["state"] == "rejected" and "kept the current model" in r["decision"]
    listed = c.js("tune", "list", cwd=str(repo))
    assert listed["serving"] == 1 and [v["state"] for v in listed["versions"]] == ["rejected", "active"]
    # A rejected version is refused, with the reason; nothing changes.
    bad = c.fails(1, "tune", "activate", "2", "--json", cwd=str(repo))
    assert "rejected" in bad.err and "R@10 must rise" in bad.err
    assert c.js("tune", "list", cwd=str(repo))["serving"] == 1
    missing = c.fails(1, "tune", "activate", "7", cwd=str(repo))
    assert "no tuned embedder version 7" in missing.err
    c.fails(1, "tune", "activate", "1", cwd=str(repo))  # already serving

    job = c.js("tune", "rollback", cwd=str(repo))
    assert job["state"] == "done" and job["result"] == {"version": 0, "serving": 0, "rollback": True}
    listed = c.js("tune", "list", cwd=str(repo))
    assert listed["serving"] == 0 and [v["state"] for v in listed["versions"]] == ["rejected", "retired"]
    assert _status(c, repo)["model"] == "fake@dim256"
    assert c.js("search", "vector index of a project", cwd=str(repo))["results"]
    c.fails(1, "tune", "rollback", cwd=str(repo))  # the base model serves: nothing to roll back
    job = c.js("tune", "activate", "1", cwd=str(repo))
    assert job["state"] == "done" and c.js("tune", "list", cwd=str(repo))["serving"] == 1


def test_search_serves_the_old_model_until_the_new_index_is_complete(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    slow = {**FAKE_EMBEDDER, GAIN: "0.05", "MUSUBI_TEST_INDEX_BATCH": "150", "MUSUBI_TEST_INDEX_DELAY_S": "1"}
    with cli_fixture(env=slow) as c:
        c.ok("project", "add", str(repo), "--name", "sc")
        c.ok("index", cwd=str(repo))
        jid = c.js("tune", "embedder", "--detach", cwd=str(repo))["id"]

        def reembedding() -> dict[str, object] | None:
            j = c.js("jobs", "show", jid)
            cp = j["checkpoint"] or {}
            return j if cp.get("phase") == "reembed" and cp.get("after", -1) >= 0 and j["state"] == "running" else None

        poll(reembedding, timeout=120, interval=0.05)
        # Half-way through: the old model's index answers, complete, and the index still names the old model.
        assert _status(c, repo)["model"] == "fake@dim256"
        hits = c.js("search", "vector index of a project", cwd=str(repo))
        assert hits["results"] and hits["dense_coverage"] == 1.0
        assert c.js("tune", "list", cwd=str(repo))["serving"] == 0
        poll(lambda: c.js("jobs", "show", jid)["state"] == "done", timeout=120, interval=0.2)
        assert _status(c, repo)["model"] == "fake-model@dim256"
        assert c.js("tune", "list", cwd=str(repo))["serving"] == 1

        # Cancelled half-way through a rollback's re-embedding: nothing switches; it can be asked again.
        jid = c.js("tune", "rollback", "--detach", cwd=str(repo))["id"]
        poll(reembedding, timeout=120, interval=0.05)
        busy = c.fails(1, "tune", "embedder", cwd=str(repo))
        assert jid in busy.err  # one tuning or activation per project at a time
        c.ok("jobs", "cancel", jid)
        assert poll(lambda: c.js("jobs", "show", jid)["state"] == "cancelled", timeout=60, interval=0.1)
        listed = c.js("tune", "list", cwd=str(repo))
        assert listed["serving"] == 1 and listed["versions"][0]["state"] == "active"
        assert _status(c, repo)["model"] == "fake-model@dim256"
        assert c.js("search", "vector index of a project", cwd=str(repo))["results"]


def test_kill_9_during_training_resumes_from_the_checkpoint(cli: tuple[Cli, Path]) -> None:
    from core.client import ping

    c, repo = cli
    started = c.js("tune", "embedder", "--detach", cwd=str(repo))
    jid = started["id"]

    def training() -> bool:
        j = c.js("jobs", "show", jid)
        return bool(j["checkpoint"] and j["checkpoint"].get("step"))

    poll(training, timeout=120, interval=0.1)
    info = ping(c.paths)
    assert info
    os.kill(int(info["pid"]), 9)
    poll(lambda: not ping(c.paths), timeout=30)
    c.ok("engine", "start")
    done = poll(lambda: (j := c.js("jobs", "show", jid))["state"] in ("done", "failed") and j, timeout=120)
    assert done["state"] == "done", done
    assert done["attempts"] == 2 and done["result"]["version"] == 1  # resumed, not mined again as version 2
    assert [v["version"] for v in c.js("tune", "list", cwd=str(repo))["versions"]] == [1]


def test_unhappy_paths(tmp_path: Path) -> None:
    small = fixture.make(tmp_path)
    with cli_fixture(env={**FAKE_EMBEDDER, GAIN: "0.05"}) as c:
        outside = c.fails(1, "tune", "list", cwd=str(tmp_path))
        assert "no project" in outside.err
        c.ok("project", "add", str(small), "--name", "small")
        bad = c.fails(2, "tune", "embedder", "--budget", "5", "--json", cwd=str(small))
        assert "budget_s" in bad.err and "60" in bad.err
        c.fails(2, "tune", "activate", "x", cwd=str(small))
        # Too few pairs: the job fails saying how many and what to add; no version is recorded.
        r = c("tune", "embedder", "--json", cwd=str(small))
        assert r.rc == 1, str(r)
        assert r.json()["state"] == "failed" and "too few training pairs" in r.json()["error"]
        assert c.js("tune", "list", cwd=str(small))["versions"] == []
        c.ok("member", "add", "vic", "--role", "viewer")
        denied = c.fails(4, "--as", "vic", "tune", "embedder", cwd=str(small))
        assert "embedder.tune" in denied.err
        assert c.js("--as", "vic", "tune", "list", cwd=str(small))["serving"] == 0
