"""The Cost table's columns are as wide as their cells from the first paint after a fill.

Found as a flaky snapshot (test_snapshots.py::test_detail_columns[cost-150x40]): DataTable measures
auto-width columns only when it next goes idle, and keeps the lines it painted before that.  On a
busy machine the screen painted between the estimate's rows and that idle, so the table stayed
squeezed to its labels' widths ("gpt-6", "OK 6% left requ").  Here the paint in between is forced.
"""

from __future__ import annotations

from tests.models.test_cost_screen import open_cost
from tests.tui.conftest import settle
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.cost import CostTable


async def test_a_paint_right_after_a_fill_shows_whole_cells() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(150, 40)) as pilot:
        scr = await open_cost(pilot)
        t = scr.query_one(CostTable)
        scr._fill_table()  # what a new estimate (or a resize) does ...
        first_paint = [t.render_line(y).text for y in range(1, 4)]  # ... then a paint before the table is idle
        await settle(pilot)  # type: ignore[arg-type]
        later = [t.render_line(y).text for y in range(1, 4)]
    for lines in (first_paint, later):
        names = [line.split()[0] for line in lines]
        assert names == ["gpt-6.1-sol", "claude-sonnet-5-5", "gemini-3.8-flash"], lines
        assert all("requests/hour" in line and "░" in line for line in lines), lines  # the quota cell whole
