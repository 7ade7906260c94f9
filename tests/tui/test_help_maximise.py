"""F1 help and F10 maximise at 80×24 (issue 15 items 4 and 5)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.help import HelpScreen


def screen_text(app: MusubiApp) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def open_trace(app: MusubiApp, pilot: object) -> None:
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")  # type: ignore[arg-type]
    await settle(pilot)  # type: ignore[arg-type]
    await pilot.press("2")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "trace loaded")  # type: ignore[arg-type]
    await settle(pilot)  # type: ignore[arg-type]


async def test_help_names_the_focused_widget_and_lists_screen_keys_first_reachable_at_80x24() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_trace(app, pilot)
        await pilot.press("f1")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = "\n".join(screen_text(app))
        assert "Focused: the tree 'trace tree' in the Requirements panel" in text
        assert "TraceScreen" not in text
        headings = [str(s.render()) for s in help_screen.query(".help-section").results(Static)]
        assert "Keys everywhere (remap by id in [keymap] of config.toml)" in headings  # not eaten as markup
        i_screen = next(i for i, h in enumerate(headings) if h.startswith("Keys on this screen"))
        i_global = next(i for i, h in enumerate(headings) if h.startswith("Keys everywhere"))
        assert i_screen < i_global
        screen_keys = str(help_screen.query_one("#help-keys-screen", Static).render())
        global_keys = str(help_screen.query_one("#help-keys-global", Static).render())
        assert "trace_review" in screen_keys and "trace_rescan" in screen_keys and "quit" not in screen_keys
        assert "quit" in global_keys and "trace_review" not in global_keys
        # Every key is reachable: scroll to the end and the last global key line is on screen.
        scroll = help_screen.query_one("#help-scroll", VerticalScroll)
        assert scroll.has_focus
        await pilot.press("end")
        await settle(pilot)
        last = global_keys.splitlines()[-1].strip()
        seen = "\n".join(screen_text(app))
        assert last in seen


async def test_f10_maximises_the_trace_details_pane_and_the_tree_keeps_its_border() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_trace(app, pilot)
        await pilot.press("f10")
        await settle(pilot)
        assert app.screen.maximized is not None and app.screen.maximized.id == "trace-tree-panel"
        lines = screen_text(app)
        assert lines[0].lstrip().startswith("1 Dashboard"), "the mode bar stays on top"
        assert lines[1].startswith("╭─ Requirements") and lines[1].endswith("╮"), "the right border is drawn"
        await pilot.press("f10", "tab", "f10")  # restore, focus the details, maximise them
        await settle(pilot)
        assert app.screen.maximized is not None and app.screen.maximized.id == "trace-details-panel"
        assert screen_text(app)[1].startswith("╭─ Details")
