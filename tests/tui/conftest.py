"""Fixtures for TUI tests: the fake engine, a real engine on a short temporary home, and waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from core.client import start_engine, stop_engine
from core.paths import HomePaths
from tests.tui.fakes import FakeEngineApi


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never read the developer's own config.toml, and never leak NO_COLOR into colour tests.
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)


@pytest.fixture
def fake_api() -> FakeEngineApi:
    return FakeEngineApi()


@pytest.fixture
def engine_home() -> Iterator[HomePaths]:
    """A real engine on a short temporary MUSUBI_HOME, stopped afterwards."""
    paths = HomePaths.resolve(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
    start_engine(paths)
    try:
        yield paths
    finally:
        stop_engine(paths)
        shutil.rmtree(paths.home, ignore_errors=True)


LONG_LIVED = ("engine-link", "tutorial-watch")  # workers that run as long as the app (or a tutorial) does


async def wait_for(pilot: Pilot[object], cond: Callable[[], object], what: str, deadline_s: float = 60.0) -> None:
    """Pump the app until ``cond()`` holds; fail naming ``what`` if it never does (a hang guard, not a speed check)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        await pilot.pause(0.05)


async def settle(pilot: Pilot[object]) -> None:
    """Wait for every worker except the long-lived ones (engine link, tutorial watcher), then let messages drain."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        for w in [w for w in app.workers if w.group not in LONG_LIVED and w.is_running]:
            # An exclusive worker replaced by a newer one while we wait is cancelled: normal, not a failure
            # (the newer one is waited for in the next pass).  A worker that failed still raises.
            with contextlib.suppress(WorkerCancelled):
                await w.wait()
        # A screen that coalesces repaints on a timer (the Dashboard) paints what is pending now,
        # so a snapshot never depends on whether the tick came before it.
        settled = getattr(app.screen, "settled", None)
        if callable(settled) and not settled():
            continue  # its data is still on the way: another pass
        repaint = getattr(app.screen, "repaint_now", None)
        if callable(repaint):
            repaint()
    await pilot.pause()


async def open_admin_tab(pilot: Pilot[object], tab: str) -> None:
    """Open Admin (6) and move right (]) to ``tab``, waiting after each key for what it brings: a key sent
    while the screen is still mounting (or restoring its saved tab) on a loaded machine would be lost."""
    from textual.widgets import TabbedContent

    app = pilot.app
    await pilot.press("6")

    def tabs() -> TabbedContent | None:
        found = app.screen.query(TabbedContent) if app.current_mode == "admin" else None
        return found.first() if found else None

    await wait_for(pilot, lambda: tabs() is not None and tabs().active, "the Admin screen's tabs")  # type: ignore[union-attr]
    await settle(pilot)
    for _ in range(12):  # more than there are tabs
        now = tabs().active  # type: ignore[union-attr]
        if now == tab:
            return
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda was=now: tabs().active != was, f"the Admin tab after {now}")  # type: ignore[union-attr,misc]
        await settle(pilot)
    raise AssertionError(f"no Admin tab {tab!r}")
