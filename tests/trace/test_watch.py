"""The automatic re-scan: a file watcher per repository, polling where watching is unavailable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from core.engine import routes_trace
from core.engine.routing import install
from core.trace import watch as W
from core.trace.service import TraceService
from tests.engine.helpers import Home, unique, wait_gone
from tests.trace.fixture import build_repo

NEW_REQ = "\n## REQ-AUTH-077: Session audit\n\nThe System SHALL record every session start.\n"
DEADLINE_S = 30.0  # generous: the machine is shared; the condition usually holds within a second


def wait_for(cond: Callable[[], Any], what: str) -> Any:
    """Poll ``cond`` until it is truthy (returned) or the deadline passes (fails naming ``what``)."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"not within {DEADLINE_S}s: {what}")


def add_requirement(repo: Path) -> None:
    spec = repo / "storage" / "specs" / "auth.md"
    spec.write_text(spec.read_text("utf-8") + NEW_REQ, "utf-8")


@pytest.fixture
def svc(tmp_path: Path) -> Any:
    s = TraceService(lambda _t: tmp_path / "home")
    yield s
    s.close()


def test_a_change_is_picked_up_by_the_watcher_and_nothing_rescanned_meanwhile(
    svc: TraceService, tmp_path: Path
) -> None:
    repo = build_repo(tmp_path / "repo", git=False)
    first = svc.summary("t", repo, changes=True)
    assert first["scan"]["watch"]["mode"] == "watch" and first["scan"]["watch"]["rescanned"] is True
    n = first["summary"]["requirements"]
    # Starting the watcher counts as a change (what changed meanwhile was unseen): one more re-scan.
    assert svc.summary("t", repo, changes=True)["scan"]["watch"]["rescanned"] is True
    quiet = svc.summary("t", repo, changes=True)  # nothing changed since: answered from the last scan
    assert quiet["scan"]["watch"]["rescanned"] is False and quiet["scan"]["parsed"] == 0
    assert quiet["summary"] == first["summary"]
    w = svc.watches.peek(repo)
    assert w is not None
    before = w.version
    add_requirement(repo)
    wait_for(lambda: w.version > before, "the watcher saw the spec change")
    changed = svc.summary("t", repo, changes=True)
    assert changed["scan"]["watch"]["rescanned"] is True and changed["scan"]["parsed"] == 1
    assert changed["summary"]["requirements"] == n + 1


def test_plain_reads_never_start_a_watcher(svc: TraceService, tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo", git=False)
    svc.report("t", repo)
    svc.gaps("t", repo)
    plain = svc.summary("t", repo)  # `trace check` asks this: a plain re-scan, never a cached answer
    assert "watch" not in plain["scan"]
    assert svc.watches.peek(repo) is None and svc.watches.threads() == []


def test_a_watcher_that_cannot_start_falls_back_to_polling(tmp_path: Path) -> None:
    def refuse(_paths: list[str]) -> W.Notifier:
        raise OSError(28, "OS file watch limit reached")

    s = TraceService(lambda _t: tmp_path / "home")
    s.watches = W.Watches(make=refuse)
    repo = build_repo(tmp_path / "repo", git=False)
    first = s.summary("t", repo, changes=True)
    mode = first["scan"]["watch"]
    assert mode["mode"] == "poll" and "watch limit reached" in mode["reason"] and mode["rescanned"] is True
    assert s.watches.threads() == []
    add_requirement(repo)  # polled: the very next ask re-scans and sees it, no waiting
    again = s.summary("t", repo, changes=True)
    assert again["scan"]["watch"]["rescanned"] is True
    assert again["summary"]["requirements"] == first["summary"]["requirements"] + 1


def test_watching_turned_off_by_the_environment(
    svc: TraceService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(W.ENV, "0")
    repo = build_repo(tmp_path / "repo", git=False)
    s = svc.summary("t", repo, changes=True)["scan"]["watch"]
    assert s["mode"] == "poll" and s["rescanned"] is True and svc.watches.threads() == []
    assert svc.summary("t", repo, changes=True)["scan"]["watch"]["rescanned"] is True


def test_a_watcher_that_dies_degrades_to_polling(tmp_path: Path) -> None:
    class Dying:
        def __init__(self) -> None:
            self.closed = False

        def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any:
            raise RuntimeError("inotify queue overflow")

        def close(self) -> None:
            self.closed = True

    n = Dying()
    w = W.RepoWatch(tmp_path, make=lambda _paths: n)
    w.ensure(["a.md"])
    wait_for(lambda: not w.watching and n.closed, "the dead watcher is reported and its notifier closed")
    assert w.mode()["mode"] == "poll" and "inotify queue overflow" in str(w.reason)
    w.stop()


def test_close_ends_every_watcher_thread(tmp_path: Path) -> None:
    ws = W.Watches()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    wa, wb = ws.get(a), ws.get(b)
    assert wa is not None and wb is not None
    wa.ensure([])
    wb.ensure([])
    assert wa.watching and wb.watching
    threads = ws.threads()
    assert len(threads) == 2
    ws.close()
    assert not any(t.is_alive() for t in threads) and ws.threads() == []
    assert ws.get(a) is None  # a closed set starts nothing new: later asks poll


def test_the_engine_cleanup_ends_the_watchers(tmp_path: Path) -> None:
    """The graceful stop (runner.cleanup → app.on_cleanup) stops what the trace routes started."""
    repo = build_repo(tmp_path / "repo", git=False)
    app = web.Application()
    api: Any = SimpleNamespace(r=SimpleNamespace(tenant_dir=lambda _t: tmp_path / "home"))
    install(app, api, [routes_trace.ROUTES])
    close = routes_trace.TraceRoutes.close
    routes = next(cb.__self__ for cb in app.on_cleanup if getattr(cb, "__func__", None) is close)
    routes.svc.summary("t", repo, changes=True)
    threads = routes.svc.watches.threads()
    assert len(threads) == 1

    async def stop() -> None:
        app.freeze()
        await app.cleanup()

    asyncio.run(stop())
    assert not threads[0].is_alive() and routes.svc.watches.threads() == []


def test_through_a_real_engine(eng: Home, tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo")
    tenant = eng.new_tenant("tw")
    eng.client(tenant).post("/v1/projects", {"path": str(repo), "name": unique("p")})
    c = eng.client(tenant, cwd=str(repo))
    n = c.get("/v1/trace", {"view": "changes"})["summary"]["requirements"]
    assert c.get("/v1/trace", {"view": "changes"})["scan"]["watch"]["mode"] == "watch"
    add_requirement(repo)
    wait_for(
        lambda: c.get("/v1/trace", {"view": "changes"})["summary"]["requirements"] == n + 1,
        "the engine's automatic re-scan saw the new requirement",
    )
    # The graceful stop completes cleanly with a watcher running (that it joins the thread: the cleanup test).
    pid = eng.pid()
    eng.stop()
    wait_gone(pid)
    assert "engine stopped cleanly" in eng.paths.engine_log.read_text()


def test_the_watched_folders_are_the_listed_ones_and_their_parents() -> None:
    assert W.folders(["a.md", "specs/001-x/spec.md", "src/app/main.py"]) == {
        "", "specs", "specs/001-x", "src", "src/app",
    }


def test_ignored_trees_and_symlinks_are_not_watched(svc: TraceService, tmp_path: Path) -> None:
    """Only the folders the scan lists are watched, each non-recursively: no walk into ignored or linked trees."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    repo = build_repo(tmp_path / "repo", git=True)  # .gitignore'd build/ and links to ../.. and . inside
    (repo / "node_modules" / "pkg").mkdir(parents=True)
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "node_modules/\n")
    (repo / "src" / "out").symlink_to(outside)
    given: list[list[str]] = []
    real = svc.watches.make

    def recording(paths: list[str]) -> W.Notifier:
        given.append(paths)
        return real(paths)

    svc.watches.make = recording
    assert svc.summary("t", repo, changes=True)["scan"]["watch"]["mode"] == "watch"
    watched = set(given[-1])
    assert str(repo) in watched and str(repo / "storage" / "specs") in watched
    assert not any(p.startswith((str(repo / "build"), str(repo / "node_modules"), str(outside))) for p in watched)
    assert str(repo / "src" / "out") not in watched and str(repo / "src" / "loop") not in watched


def test_a_new_folder_is_watched_after_the_rescan_that_finds_it(svc: TraceService, tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo", git=False)
    n = svc.summary("t", repo, changes=True)["summary"]["requirements"]
    w = svc.watches.peek(repo)
    assert w is not None
    svc.summary("t", repo, changes=True)  # the re-scan the watcher's start asks for
    assert svc.summary("t", repo, changes=True)["scan"]["watch"]["rescanned"] is False
    before = w.version
    new = repo / "storage" / "specs" / "more"
    new.mkdir()  # seen in its watched parent
    wait_for(lambda: w.version > before, "the new folder was seen")
    # The re-scan lists the new folder and the watcher restarts on the new set.
    assert svc.summary("t", repo, changes=True)["scan"]["watch"]["rescanned"] is True
    before = w.version
    (new / "extra.md").write_text("# Extra\n" + NEW_REQ)
    wait_for(lambda: w.version > before, "a file in the new folder was seen")
    assert svc.summary("t", repo, changes=True)["summary"]["requirements"] == n + 1
