"""The Dashboard on a REAL engine (runs test hook: the scripted provider): a run started by another client
appears live, stops at its approval gate with the diff on screen, and the a key approves it — the run then
finishes, told by the engine's events alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.async_client import AsyncEngineClient
from core.wire import Identity
from tests.engine.helpers import Home
from tests.runs.helpers import WORKFLOWS, show, start, wait, write_json
from tests.tui.conftest import settle, wait_for
from tests.tui.test_live_screens import screen_text
from tui.app import MusubiApp
from tui.config import ColorDecision, EngineSettings, Settings
from tui.context import AppContext
from tui.screens.dashboard import DashboardScreen

DIFF = "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-old line\n+new line from the agent\n"


@pytest.fixture
def rhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.setenv("MUSUBI_TEST_RUNS", "1")
    h = Home()
    write_json(h, "test-workflows.json", WORKFLOWS)
    write_json(h, "test-provider.json", {"delay_s": 0.05, "replies": {"2": [DIFF]}})
    try:
        h.start()
        yield h
    finally:
        h.cleanup()


async def test_a_real_run_shows_live_and_is_approved_from_the_dashboard(rhome: Home) -> None:
    tenant = rhome.new_tenant("dash")
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    api = AsyncEngineClient(rhome.paths, Identity(tenant=tenant, cwd="/"))
    app = MusubiApp(AppContext(api, settings, ColorDecision("truecolor", "test"), animations=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "engine connected", 30)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await wait_for(pilot, lambda: screen.runs_loaded, "runs read")
        assert "No runs yet" in screen_text(app)
        run = start(rhome, tenant, "gated")  # another client starts it
        await wait_for(pilot, lambda: run["id"] in screen_text(app), "the new run listed from its events", 30)
        await wait_for(pilot, lambda: screen.pending_approval() is not None, "the gate reached", 30)
        await wait_for(pilot, lambda: "+new line from the agent" in screen_text(app), "the diff shown", 30)
        await settle(pilot)
        await pilot.press("a")
        done = wait(rhome, tenant, run["id"], "done", "failed", "stopped")
        assert done["state"] == "done", done
        assert [a["state"] for a in done["approvals"]] == ["approved"]
        await wait_for(pilot, lambda: screen.runs[run["id"]]["state"] == "done", "done from the events", 30)
        await wait_for(pilot, lambda: "✔ done" in screen_text(app), "done on screen", 30)


async def test_a_real_public_diff_is_shown_and_changes_are_requested_from_the_dashboard(rhome: Home) -> None:
    """The gate shows a patch nobody here wrote (posting, commit 287ed037), and c sends a comment to the engine."""
    patch = (Path(__file__).parent / "data" / "posting-287ed037.diff").read_text(encoding="utf-8")
    write_json(rhome, "test-provider.json", {"delay_s": 0.05, "replies": {"2": [patch]}})
    tenant = rhome.new_tenant("dash")
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    api = AsyncEngineClient(rhome.paths, Identity(tenant=tenant, cwd="/"))
    app = MusubiApp(AppContext(api, settings, ColorDecision("truecolor", "test"), animations=False))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "engine connected", 30)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        run = start(rhome, tenant, "gated")
        await wait_for(pilot, lambda: screen.pending_approval() is not None, "the gate reached", 30)
        await wait_for(pilot, lambda: "+        paths_to_watch = {self.settings.theme_directory}" in screen_text(app),
                       "the public patch shown", 30)
        assert "-        async for changes in awatch(self.settings.theme_directory):" in screen_text(app)
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"also watch the parent of a symlinked theme file", "enter")
        await wait_for(pilot, lambda: any("Asked for changes" in str(n.message) for n in app._notifications),
                       "changes sent", 30)
        shown = show(rhome, tenant, run["id"])
        gate = shown["approvals"][0]
        assert gate["state"] == "changes_requested"
        assert gate["comment"] == "also watch the parent of a symlinked theme file"
