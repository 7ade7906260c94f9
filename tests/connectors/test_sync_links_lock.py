"""`musubi sync` and trace link decisions share one links.yml write lock (issue 17 gaps, item 4).

Before, the sync took a lock of its own: a trace decision that had read links.yml, then saved
after a sync's save, wrote back its stale copy and the sync's ``external`` entries were lost.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from core.integrations.service import IntegrationService
from core.trace.links import LinksFile, StoredLink, write_lock
from core.trace.service import TraceService
from tests.connectors.fakes_fixtures import jira_connector, spec_repo
from tests.fakes.jira import JiraFake


def test_one_lock_per_repository_whatever_the_spelling(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "alias").symlink_to(repo)
    assert TraceService._writing(repo) is write_lock(repo) is write_lock(tmp_path / "alias")
    assert write_lock(tmp_path) is not write_lock(repo)


def service_for(root: Path, tmp_path: Path, jira: JiraFake) -> IntegrationService:
    """An IntegrationService over a stand-in runner: enough for one sync job of project ``app``."""
    runner: Any = SimpleNamespace(tenant_dir=lambda t: tmp_path / "home" / t,
                                  state=SimpleNamespace(projects={"acme": {"app": {"path": str(root)}}}))
    jobs: Any = SimpleNamespace(register=lambda *a, **k: None)
    svc = IntegrationService(runner, jobs)
    svc.connector = lambda tenant, system, *_: jira_connector(jira)  # type: ignore[method-assign]

    async def no_audit(*_a: Any, **_k: Any) -> None:
        return None

    svc._audit = no_audit  # type: ignore[method-assign]
    return svc


async def test_a_trace_decision_in_flight_holds_off_the_sync_save(jira: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path / "app")
    LinksFile.load(root).save()
    svc = service_for(root, tmp_path, jira)
    loaded, go = threading.Event(), threading.Event()

    def trace_decision() -> None:  # what TraceService.decide_link does, paused between its read and its write
        with TraceService._writing(root):
            lf = LinksFile.load(root)
            loaded.set()
            go.wait(30)
            lf.put(StoredLink("REQ-AUTH-001", "code", "src/login.py", None, "manual", "accepted", "alice", "now"))
            lf.save()

    t = threading.Thread(target=trace_decision)
    t.start()
    assert loaded.wait(10)
    h = SimpleNamespace(params={"system": "jira", "project_key": "PROJ", "dry_run": False, "resolve": {},
                                "include": ["requirement", "task"]},
                        tenant="acme", project="app", id="j-1", created_by="alice", progress=lambda *a: None)
    job = asyncio.create_task(svc._run_sync(h))  # type: ignore[arg-type]
    while len(jira.issues) < 4 and not job.done():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # without the shared lock, the sync's saves land now, before the decision's
    go.set()
    report = await job
    await asyncio.to_thread(t.join, 10)
    assert len(report["created"]) == 4
    lf = LinksFile.load(root)
    assert [(lk.requirement, lk.target) for lk in lf.links] == [("REQ-AUTH-001", "src/login.py")]
    assert sorted(x.artefact for x in lf.external) == ["REQ-AUTH-001", "REQ-AUTH-002", "TASK-AUTH-001",
                                                       "TASK-AUTH-002"]
