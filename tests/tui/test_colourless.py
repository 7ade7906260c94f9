"""State shown by a symbol or a word as well as colour (issue 15 item 2): checked at the widget level here,
and by the 16-colour and NO_COLOR snapshots of every screen in test_snapshots.py."""

from __future__ import annotations

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.widgets.checklist import CheckList


async def test_cost_model_selection_reads_without_colour() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi(), color="none"))
    async with app.run_test(size=(160, 50)) as pilot:  # the whole list on screen, chosen rows among them
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await pilot.press("4")
        await settle(pilot)
        sl = app.screen.query_one("#cost-models", CheckList)
        await wait_for(pilot, lambda: sl.option_count > 0, "models listed")
        await settle(pilot)
        lines = [sl.render_line(y).text for y in range(min(sl.option_count, sl.size.height))]
        chosen = set(sl.selected)
        assert chosen, "the default picks are selected"
        for i, line in enumerate(lines):
            value = sl.get_option_at_index(i).value
            assert line.startswith("[x]" if value in chosen else "[ ]"), line
        assert any(line.startswith("[ ]") for line in lines) and any(line.startswith("[x]") for line in lines)
        # Toggling a row changes its mark, not only its colour.
        sl.focus()
        sl.highlighted = 0
        before = sl.render_line(0).text[:3]
        await pilot.press("space")
        await settle(pilot)
        assert sl.render_line(0).text[:3] != before
