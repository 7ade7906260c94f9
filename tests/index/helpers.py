"""A real git repository in a temp dir, an engine with the fake embedder, and index/search shortcuts."""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cli.helpers import Cli, cli_fixture
from tests.engine.helpers import Home, poll

FAKE_DIM = "256"
FAKE_EMBEDDER = {"MUSUBI_TEST_FAKE_EMBEDDER": FAKE_DIM}  # the engine test hook: embed with the FakeEmbedder


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def write(repo: Path, rel: str, text: str) -> None:
    p = repo / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def make_repo(base: Path, files: dict[str, str]) -> Path:
    repo = base / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for rel, text in files.items():
        write(repo, rel, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def add_project(h: Home, tenant: str, name: str, repo: Path) -> None:
    status, body = h.raw("POST", "/v1/projects", {"name": name, "path": str(repo)}, tenant=tenant)
    assert status in (200, 201), body


def start_index(h: Home, tenant: str, project: str, force: bool = False, as_user: str | None = None) -> dict[str, Any]:
    status, body = h.raw("POST", "/v1/index", {"force": force}, tenant=tenant, project=project, as_user=as_user)
    assert status == 202, body
    return dict(body["job"])


def job(h: Home, tenant: str, job_id: str) -> dict[str, Any]:
    status, body = h.raw("GET", f"/v1/jobs/{job_id}", tenant=tenant)
    assert status == 200, body
    return dict(body)


def wait_job(h: Home, tenant: str, job_id: str, *states: str, timeout: float = 120) -> dict[str, Any]:
    want = states or ("done",)

    def check() -> dict[str, Any] | None:
        j = job(h, tenant, job_id)
        if j["state"] in ("failed",) and "failed" not in want:
            raise AssertionError(f"job failed: {j['error']}")
        return j if j["state"] in want else None

    return dict(poll(check, timeout=timeout, interval=0.1))


def index(h: Home, tenant: str, project: str, force: bool = False) -> dict[str, Any]:
    """Index and wait; the job's result (files, changed, deleted, chunks, embedded, reused, ...)."""
    j = start_index(h, tenant, project, force)
    return dict(wait_job(h, tenant, j["id"])["result"])


def search(h: Home, tenant: str, project: str, query: str, **kw: Any) -> tuple[int, Any]:
    return h.raw("POST", "/v1/search", {"query": query, **kw}, tenant=tenant, project=project, timeout=60)


@contextlib.contextmanager
def cli_with_project(base: Path, files: dict[str, str], name: str) -> Iterator[tuple[Cli, Path]]:
    """``musubi`` on an engine with the fake embedder and ``files`` registered as project ``name``."""
    repo = make_repo(base, files)
    with cli_fixture(env=FAKE_EMBEDDER) as c:
        c.ok("project", "add", str(repo), "--name", name)
        yield c, repo
