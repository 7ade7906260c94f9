"""SVG snapshots of the Dashboard's runs (issue 12): a running run with streamed output, a pending approval
showing its diff, the empty state — at 80×24 first; the approval at 120×40, at 16 colours and with NO_COLOR
(states read by symbol and word, the diff by its +/- lines).

The app runs on the fake engine (fixed runs, frozen clock), so the pictures change only when the UI does.
Regenerate after a deliberate UI change with ``pytest tests/tui/test_dashboard_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import settle, wait_for
from tests.tui.fake_runs import RUN_A, FakeRuns, event
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.dashboard import DashboardScreen

OUTPUT = [event("run.output", RUN_A, step="3/2", agent="test-engineer", text=t) for t in (
    "def test_runs_list_json(cli):\n", "    out = cli('runs', 'list', '--json')\n",
    "    assert json.loads(out)[0]['state'] in RUN_STATES\n",
)]


Before = Callable[[Pilot[Any]], Awaitable[None]]


def goto(keys: tuple[str, ...] = (), events: tuple[dict[str, Any], ...] = ()) -> Before:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await wait_for(pilot, lambda: screen.runs_loaded, "runs read")
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await wait_for(pilot, screen.settled, "the runs and the selected run read")
        for ev in events:
            app.ctx.api.queue.put_nowait(ev)
        # the engine link hands each event to the screen: wait until all are taken, and applied to its model
        await wait_for(pilot, lambda: app.ctx.api.queue.empty(), "events delivered")
        outputs = [ev for ev in events if ev["type"] == "run.output"]
        if outputs:
            key, last = (outputs[-1]["run"], outputs[-1]["step"]), outputs[-1]["text"]
            await wait_for(pilot, lambda: screen.outputs.get(key, "").endswith(last), "the output applied")
        await pilot.pause(0.4)  # a repaint tick after the last change
        await settle(pilot)  # workers (the diff's highlighting thread) done, pending repaints painted
        await pilot.pause(0.4)
        await settle(pilot)
        app.clear_notifications()
        # Every panel painted once more at the sizes the layout has now (a paint during the first layout
        # used the sizes of that moment), then a refresh for the layout to follow.
        screen.repaint_now(full=True)
        await pilot.pause()
        await settle(pilot)
        await pilot.pause()

    return run_before


def app_with(color: str = "truecolor", empty: bool = False) -> MusubiApp:
    api = FakeEngineApi()
    if empty:
        api.runs = FakeRuns(empty=True)
    return MusubiApp(fake_ctx(api, color=color))


CASES: dict[str, tuple[dict[str, Any], Before, tuple[int, int]]] = {
    # A run in progress: its step tree, the running step's output so far (the engine's live tail, then
    # events) — deterministic because settle() waits for the screen's data (settled) and paints what is
    # pending at once (repaint_now) instead of racing the coalesced repaint tick.
    "running-80x24": ({}, goto(events=tuple(OUTPUT)), (80, 24)),
    "approval-80x24": ({}, goto(("down",)), (80, 24)),
    "empty-80x24": ({"empty": True}, goto(), (80, 24)),
    "approval-120x40": ({}, goto(("down",)), (120, 40)),
    "approval-16-colours": ({"color": "16"}, goto(("down",)), (80, 24)),
    "approval-no-colour": ({"color": "none"}, goto(("down",)), (80, 24)),
}


SNAPS = Path(__file__).parent / "__snapshots__" / "test_dashboard_snapshots"


@pytest.mark.parametrize("name", CASES)
def test_dashboard_snapshot(snap_compare: Callable[..., bool], name: str) -> None:
    state, before, size = CASES[name]
    assert snap_compare(app_with(**state), terminal_size=size, run_before=before)


def test_the_docs_screenshot_is_the_current_snapshot() -> None:
    snap = SNAPS / "test_dashboard_snapshot[approval-80x24].svg"
    doc = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dashboard-approval-80x24.svg"
    assert doc.read_bytes() == snap.read_bytes(), f"docs/screenshots/{doc.name} is stale: copy {snap.name} over it"
