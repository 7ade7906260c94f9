"""A run records its project's git ref; ``GET /v1/runs/{id}/pipeline`` shows that ref's CI pipeline (issue 17 gaps).

A real engine, a real git repository (``git init``, one commit on a branch) and the GitLab fake.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.api import integrations as i
from core.integrations.contracts import PipelineRun
from core.integrations.gitref import head
from core.integrations.runpipe import pick
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.fakes.gitlab import GitLabFake
from tests.fakes.threaded import threaded
from tests.notify.test_notify_engine import HOOK
from tests.runs.helpers import runs_home, wait


def git_repo(root: Path, branch: str = "feature/login") -> str:
    """A repository with one commit on ``branch``; answers the commit."""
    root.mkdir(parents=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(root)}
    for args in (["init", "-q", "-b", branch], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_head_reads_branch_commit_packed_refs_worktrees_and_detached(tmp_path: Path) -> None:
    sha = git_repo(tmp_path / "r")
    assert head(tmp_path / "r") == ("feature/login", sha)
    subprocess.run(["git", "pack-refs", "--all"], cwd=tmp_path / "r", check=True)
    assert head(tmp_path / "r") == ("feature/login", sha)  # loose ref gone, packed-refs has it
    subprocess.run(["git", "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt")], cwd=tmp_path / "r",
                   check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert head(tmp_path / "wt") == ("other", sha)  # .git is a file naming the worktree's git dir
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=tmp_path / "r", check=True)
    assert head(tmp_path / "r") == (sha, sha)
    (tmp_path / "plain").mkdir()
    assert head(tmp_path / "plain") is None
    (tmp_path / "broken" / ".git").mkdir(parents=True)
    assert head(tmp_path / "broken") is None  # no HEAD: unreadable, not an error


def test_pick_prefers_the_recorded_commit_else_the_newest() -> None:
    runs = [PipelineRun("gitlab", "9", "main", "running", "running", sha="b" * 40),
            PipelineRun("gitlab", "8", "main", "failed", "failed", sha="a" * 40)]
    assert pick(runs, "a" * 40) is runs[1]
    assert pick(runs, "c" * 40) is runs[0] and pick(runs, None) is runs[0] and pick([], "a") is None


@pytest.fixture
def home() -> Iterator[Home]:
    with runs_home(MUSUBI_TEST_CONNECTORS=HOOK) as h:
        yield h


def start(h: Home, tenant: str, project: str) -> dict[str, Any]:
    status, body = h.raw("POST", "/v1/runs", {"workflow": "two", "feature": "login"}, tenant=tenant, project=project)
    assert status == 201, body
    return dict(body)


def pipeline(h: Home, tenant: str, run_id: str, **kw: Any) -> dict[str, Any]:
    status, body = h.raw("GET", f"/v1/runs/{run_id}/pipeline", tenant=tenant, **kw)
    assert status == 200, body
    _exactly(body, i.RunPipeline)
    return dict(body)


def test_a_run_shows_the_pipeline_of_its_branch_and_commit(home: Home, tmp_path: Path) -> None:
    h = home
    tenant = h.new_tenant("p", members={"vera": "viewer", "gina": "guest"})
    repo = tmp_path / "app"
    sha = git_repo(repo)
    status, body = h.raw("POST", "/v1/projects", {"path": str(repo), "name": "app"}, tenant=tenant)
    assert status in (200, 201), body
    run = start(h, tenant, "app")
    wait(h, tenant, run["id"], "done")
    first = pipeline(h, tenant, run["id"])
    assert first["state"] == "not_configured" and "musubi integrations set" in first["message"]
    got = poll(lambda: pipeline(h, tenant, run["id"])["ref"], timeout=10)
    assert got == "feature/login"
    with threaded(GitLabFake) as gl:
        status, body = h.raw("PUT", "/v1/integrations/gitlab", {"settings": {"url": gl.url, "project": gl.path},
                                                                "secrets": {"token": gl.token}}, tenant=tenant)
        assert status == 200, body
        shown = pipeline(h, tenant, run["id"])
        assert (shown["state"], shown["system"], shown["sha"], shown["source"]) == ("no_pipeline", "gitlab", sha, "git")
        base = {"project_id": gl.project_id, "ref": "feature/login", "web_url": f"{gl.url}/acme/app/-/pipelines/1",
                "created_at": "2026-12-06T00:00:00.000Z", "updated_at": "2026-12-06T00:00:00.000Z", "_polls": 0}
        gl.pipelines[1] = {**base, "id": 1, "iid": 1, "status": "failed", "sha": sha}
        gl.pipelines[2] = {**base, "id": 2, "iid": 2, "status": "running", "sha": "f" * 40}  # newer, another commit
        shown = pipeline(h, tenant, run["id"])
        assert shown["state"] == "failed" and shown["pipeline"]["id"] == "1"  # the one on the run's commit
        gl.pipelines[1]["status"] = "success"
        assert pipeline(h, tenant, run["id"])["state"] == "passed"
        assert pipeline(h, tenant, run["id"], as_user="vera")["state"] == "passed"  # viewers read it
        status, body = h.raw("GET", f"/v1/runs/{run['id']}/pipeline", tenant=tenant, as_user="nobody")
        assert status in (403, 404), body
        # Linking another ref (the merge request's branch, say) needs runs.start; the newest pipeline of it shows.
        status, body = h.raw("PUT", f"/v1/runs/{run['id']}/pipeline", {"ref": "main"}, tenant=tenant, as_user="vera")
        assert status == 403, body
        status, body = h.raw("PUT", f"/v1/runs/{run['id']}/pipeline", {"ref": "has space"}, tenant=tenant)
        assert status == 400 and "without spaces" in body["error"]["message"]
        gl.pipelines[3] = {**base, "id": 3, "iid": 3, "status": "pending", "sha": "e" * 40, "ref": "main"}
        status, body = h.raw("PUT", f"/v1/runs/{run['id']}/pipeline", {"ref": "main"}, tenant=tenant)
        assert status == 200, body
        assert (body["state"], body["ref"], body["source"], body["sha"]) == ("running", "main", "user", None)
        gl.rate_limit(times=50)  # the vendor refuses: a plain error state, no exception for the Dashboard
        status, body = h.raw("GET", f"/v1/runs/{run['id']}/pipeline", tenant=tenant, timeout=60)
        assert status == 200 and body["state"] == "error" and body["message"], body
    link = [e for e in h.audit(tenant) if e["action"] == "run.pipeline.link"]
    assert sorted((e["outcome"], str(e["details"].get("ref"))) for e in link) == [("denied", "None"),
                                                                                    ("success", "main")]
    h.kill9()
    h.start()
    after = pipeline(h, tenant, run["id"])
    assert (after["ref"], after["source"]) == ("main", "user")  # run_refs survived the kill


def test_a_run_outside_git_records_no_ref(home: Home, tmp_path: Path) -> None:
    h = home
    tenant = h.new_tenant("n")
    (tmp_path / "plain").mkdir()
    h.raw("POST", "/v1/projects", {"path": str(tmp_path / "plain"), "name": "plain"}, tenant=tenant)
    h.raw("PUT", "/v1/integrations/github", {"settings": {"repo": "acme/app"}, "secrets": {"token": "x"}},
          tenant=tenant)
    run = start(h, tenant, "plain")
    wait(h, tenant, run["id"], "done")
    shown = pipeline(h, tenant, run["id"])
    assert shown["state"] == "no_ref" and "link-run" in shown["message"] and shown["system"] == "github"
    status, body = h.raw("GET", "/v1/runs/r-00000000000z/pipeline", tenant=tenant)
    assert status in (400, 404), body
