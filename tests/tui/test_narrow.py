"""80×24 is the design size (issue 15 item 3): what matters is on screen, not cut off at the right or bottom.

Read from the rendered screen as text, so a test fails when the words do not fit, whatever the widget holds.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp


def screen_text(app: MusubiApp) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def shown(pilot: Pilot[Any], *keys: str) -> list[str]:
    app = pilot.app
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")  # type: ignore[attr-defined]
    await settle(pilot)
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
    await settle(pilot)
    return screen_text(app)  # type: ignore[arg-type]


@pytest.mark.parametrize("keys", [("1",), ("2",), ("4",), ("6",), ("6", "]"), ("6", "]", "]"), ("6", "]", "]", "]")])
async def test_no_character_leaks_into_the_last_column_of_the_footer(keys: tuple[str, ...]) -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await shown(pilot, *[k if k != "]" else "right_square_bracket" for k in keys])
        footer = lines[-1]
        assert footer.rstrip().endswith("^p Commands"), footer


async def test_trace_rows_and_filter_line_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.trace.fake_trace as ft

    data = copy.deepcopy(ft._data())
    row = next(r for r in data["report"]["requirements"] if r["id"] == "REQ-AUTH-001")
    row["suspect"] = True  # covered, but changed since its review
    monkeypatch.setattr(ft, "_data", lambda: data)
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await shown(pilot, "2", "t")
        text = "\n".join(lines)
        status = app.screen.status  # type: ignore[attr-defined]
        assert status, "t chose a status filter"
        assert f"status {status}" in text, "the active status filter is on screen"
        assert "⚠✔ REQ-AUTH-001 covered ⚠ suspect" in text, "the suspect mark is on screen, before the title"
        await pilot.press("t", "t", "t", "t")  # back to any status, whatever the number of statuses
        while app.screen.status is not None:  # type: ignore[attr-defined]
            await pilot.press("t")
        await settle(pilot)
        text = "\n".join(screen_text(app))
        assert "(no design, tasks)" in text, "a partial requirement names its missing columns"
        assert "v Review" in lines[-1] or "v Review" in screen_text(app)[-1], "v Review is in the footer"


async def test_notifications_leave_the_status_bar_readable() -> None:
    from textual.widgets._toast import Toast

    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await shown(pilot)
        app.notify("A long notification that would cover the bottom right corner of the screen.", title="Note")
        await settle(pilot)
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)), "the toast is shown")
        await settle(pilot)
        bar = app.screen.query_one("#status-bar").region
        for toast in app.screen.query(Toast):
            assert not toast.region.overlaps(bar), f"{toast.region} covers the status bar {bar}"


@pytest.mark.parametrize(("name", "keys"), [
    ("new tenant", ("6", "n")),
    ("add member", ("6", "right_square_bracket", "a")),
    ("new quota", ("6", "right_square_bracket", "right_square_bracket", "n")),
    ("audit export", ("6", "right_square_bracket", "right_square_bracket", "right_square_bracket", "x")),
    ("cost export", ("4", "x")),
])
async def test_dialogs_show_their_buttons_at_80x24(name: str, keys: tuple[str, ...]) -> None:
    from textual.widgets import Button

    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, *keys)
        screen = app.screen
        frame = screen.region
        for button in screen.query(Button):
            assert frame.contains_region(button.region), f"{name}: {button.label} off screen"
        text = "\n".join(screen_text(app))
        assert "(ctrl+s)" in text and "Cancel (esc)" in text, f"{name}: buttons not drawn"
