"""SVG snapshots of the Search screen (mode 3): results with the preview at 80×24 and 120×40, every empty
state, the index progress panel, and results at 16 colours.

The fake engine's corpus (tests/tui/fake_search.py) is written to a temporary folder the preview reads;
its path never shows on screen, so the pictures change only when the UI does.  Regenerate after a
deliberate UI change with ``pytest tests/tui/test_search_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import settle, wait_for
from tests.tui.fake_search import job_row
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.search import SearchScreen


@pytest.fixture(autouse=True)
def _no_status_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen re-reads the status every JOB_POLL_S while a job runs; a loaded machine can stretch a
    picture's set-up past it, and the fake's status then differs from the events the picture injected."""
    monkeypatch.setattr("tui.screens.search.JOB_POLL_S", 3600.0)


def goto_search(query: str = "", keys: tuple[str, ...] = (), events: tuple[dict[str, Any], ...] = ()
                ) -> Callable[[Pilot[object]], Awaitable[None]]:
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")  # type: ignore[attr-defined]
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        for box in screen.query(Input):
            box.cursor_blink = False  # a blinking cursor would be in one picture and not the next
        await wait_for(pilot, lambda: screen.status is not None, "index status loaded")
        if query:
            await pilot.press(*query, "enter")
            await wait_for(pilot, lambda: screen.answer is not None or screen.error is not None, "answer")
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for ev in events:
            app.ctx.api.queue.put_nowait(ev)  # type: ignore[attr-defined]
            await pilot.pause(0.1)
        await settle(pilot)
        await pilot.pause(0.2)  # the preview's thread worker posts back
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()

    return run_before


def app_with(tmp_path: Path, color: str = "truecolor", **state: Any) -> MusubiApp:
    api = FakeEngineApi()
    api.code.write(tmp_path / "webshop")
    for key, value in state.items():
        setattr(api.code, key, value)
    return MusubiApp(fake_ctx(api, color=color))


PROGRESS_EVENT = {"type": "job.progress", "job": job_row("job-1", "running", 3, 4, rate=12.0, eta_s=2.0)}


CASES: dict[str, tuple[dict[str, Any], Callable[[Pilot[object]], Awaitable[None]], tuple[int, int]]] = {
    "results-80x24": ({}, goto_search("refund payment", ("down",)), (80, 24)),
    "results-120x40": ({}, goto_search("refund payment", ("down",)), (120, 40)),
    "type-a-query-80x24": ({}, goto_search(), (80, 24)),
    "no-results-filtered-80x24": ({}, goto_search("zebra", ("p", *"src/*", "enter")), (80, 24)),
    "not-indexed-80x24": ({"state": "none"}, goto_search(), (80, 24)),
    "no-project-80x24": ({"project": None}, goto_search(), (80, 24)),
    "indexing-80x24": ({"state": "none"}, goto_search("", ("escape", "i"), (PROGRESS_EVENT,)), (80, 24)),
}
SNAPS = Path(__file__).parent / "__snapshots__" / "test_search_snapshots"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.parametrize("name", CASES)
def test_search_snapshot(snap_compare: Callable[..., bool], tmp_path: Path, name: str) -> None:
    state, before, size = CASES[name]
    assert snap_compare(app_with(tmp_path, **state), terminal_size=size, run_before=before)


@pytest.mark.parametrize(("doc", "snap_name"), [
    ("search-80x24.svg", "test_search_snapshot[results-80x24].svg"),
    ("search-embedder-80x24.svg", "test_embedder_versions_snapshot[truecolor].svg"),
])
def test_the_docs_screenshot_is_the_current_snapshot(doc: str, snap_name: str) -> None:
    snap = SNAPS / snap_name
    assert (DOCS / doc).read_bytes() == snap.read_bytes(), f"docs/screenshots/{doc} is stale: copy {snap.name} over it"


def test_search_results_at_16_colours(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """16 colours: the ANSI theme; the hit's lines are marked ▶ and states are words, not colour alone."""
    assert snap_compare(app_with(tmp_path, color="16"), terminal_size=(80, 24), run_before=goto_search("cart total"))


def embedder_app(tmp_path: Path, color: str) -> MusubiApp:
    """The Search screen on the fake's corpus with the embedder routes on (tests/tui/fake_tune.py)."""
    from tests.tui.fake_tune import FakeTune

    app = app_with(tmp_path, color=color)
    app.ctx.api.tune = FakeTune()  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("color", ["truecolor", "none", "16"])
def test_embedder_versions_snapshot(snap_compare: Callable[..., bool], tmp_path: Path, color: str) -> None:
    """Search ▸ v at 80x24: v1 serving (▶), v2 kept out with the rule's reason; NO_COLOR and 16 colours (the
    ANSI theme) read the same: states are a symbol and a word, never colour alone."""
    assert snap_compare(embedder_app(tmp_path, color), terminal_size=(80, 24),
                        run_before=goto_search("", ("escape", "v", "down")))


def test_embedder_line_with_a_tuning_job_snapshot(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """The Search screen's embedder line at 80x24: the serving version and a running tuning job's progress."""
    from tests.tui.fake_jobs import event, job

    running = {**job("j-0000000000a3", "tune.embed", "running", done=3, total=9, unit="steps"), "project": "webshop"}
    assert snap_compare(embedder_app(tmp_path, "truecolor"), terminal_size=(80, 24),
                        run_before=goto_search("refund payment", events=(event("job.progress", running),)))
