"""Dashboard, status bar, Trace, Cost, Search and Tutorials while a second client changes their data
through a REAL engine, repeatedly (issue 15, "live-change tests for every screen"; the Admin panes are in
test_live_changes.py).  The app must stay up (``run_test`` re-raises a crash) and show the new state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Tree

from core.async_client import AsyncEngineClient
from core.client import EngineClient
from core.paths import HomePaths
from core.wire import Identity
from tests.tui.conftest import settle, wait_for
from tui.app import MusubiApp
from tui.config import ColorDecision, EngineSettings, Settings
from tui.context import AppContext
from tui.screens.search import SearchScreen
from tui.widgets.status_bar import render_status


def app_in(paths: HomePaths, cwd: Path | None = None) -> MusubiApp:
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    api = AsyncEngineClient(paths, Identity(cwd=str(cwd) if cwd else "/"))
    return MusubiApp(AppContext(api, settings, ColorDecision("truecolor", "test"), animations=False))


def limits(app: MusubiApp) -> list[Any]:
    return [q["limit"] for q in (app.ctx.quotas or {}).get("quotas", [])]


def screen_text(app: MusubiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def shows(pilot: Pilot[Any], app: MusubiApp, needle: str, what: str) -> None:
    await wait_for(pilot, lambda: needle in screen_text(app), f"{what}: {needle!r} on screen", deadline_s=30)
    assert app.is_running


async def test_dashboard_status_bar_search_and_tutorials_follow_quota_changes(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app = app_in(engine_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await settle(pilot)
        for i, key in enumerate(["1", "3", "5", "1"] * 2):
            if isinstance(app.screen, SearchScreen):
                await pilot.press("escape")  # Search's query box has the focus: digits would type into it
            await pilot.press(key)
            if key == "3":
                screen = app.screen
                assert isinstance(screen, SearchScreen)
                # Its index status is read (or why not is said in words) while quotas change under it.
                await wait_for(pilot, lambda s=screen: s.status is not None or s.status_error is not None,
                               "Search read its index status", deadline_s=30)
            limit = 1_000 + i
            # A burst from another client: the last write is what every screen must show.
            await asyncio.to_thread(client.put, "/v1/quotas", {"metric": "tokens", "period": "minute", "limit": 5})
            await asyncio.to_thread(client.put, "/v1/quotas", {"metric": "tokens", "period": "minute", "limit": limit})
            if key == "1":
                await shows(pilot, app, f"/ {limit:,} used", "Dashboard")
            await wait_for(pilot, lambda limit=limit: limit in limits(app), "quotas refreshed", deadline_s=30)
            assert "% left" in str(render_status(app.ctx, 120))
        await asyncio.to_thread(client.delete, "/v1/quotas", {"metric": "tokens", "period": "minute"})
        await pilot.press("1")
        await wait_for(pilot, lambda: "tokens/minute" not in screen_text(app), "quota removed from the Dashboard", 30)


def write_specs(repo: Path, n: int) -> list[str]:
    ids = [f"REQ-LIVE-{i:03d}" for i in range(1, n + 1)]
    body = "".join(f"## {rid}: Requirement {rid}\n\nThe system SHALL do {rid}.\n\n" for rid in ids)
    (repo / "storage" / "specs").mkdir(parents=True, exist_ok=True)
    (repo / "storage" / "specs" / "live.md").write_text(body)
    return ids


async def test_trace_follows_spec_files_changed_repeatedly(engine_home: HomePaths, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write_specs(repo, 1)
    app = app_in(engine_home, repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("2")
        tree = app.screen.query_one("#trace-tree", Tree)

        def shown() -> list[str]:
            return [n.data[1] for n in tree.root.children if n.data]

        for n in (3, 2, 5, 1):
            ids = await asyncio.to_thread(write_specs, repo, n)
            await wait_for(pilot, lambda ids=ids: shown() == ids, f"{n} requirements in the tree", deadline_s=40)
            assert app.is_running


async def test_cost_follows_quota_changes_from_another_client(engine_home: HomePaths, tmp_path: Path) -> None:
    client = EngineClient(engine_home, autostart=False)
    (tmp_path / "m.py").write_text("def f(x):\n    return x * 2\n" * 50)
    app = app_in(engine_home, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("4")
        screen = app.screen
        await wait_for(pilot, lambda: getattr(screen, "estimate", None) is not None, "first estimate", deadline_s=40)

        def quota_cells() -> list[str]:
            t = screen.query_one("#cost-table")
            return [str(t.get_row_at(i)[1]) for i in range(t.row_count)]  # type: ignore[attr-defined]

        for limit, word in ((1, "TRIPS"), (10_000_000, "OK"), (2, "TRIPS"), (50_000_000, "OK")):
            await asyncio.to_thread(client.put, "/v1/quotas", {"metric": "tokens", "period": "day", "limit": limit})
            await wait_for(pilot, lambda word=word: quota_cells() and all(c.startswith(word) for c in quota_cells()),
                           f"every model says {word} after the limit became {limit}", deadline_s=40)
            assert app.is_running
