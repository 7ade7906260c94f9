"""Admin tables read whole from the first paint after a worker's answer fills them (tui/widgets/table_fill.py).

The Cost table's flaky snapshot (tests/tui/test_cost_table_paint.py) had a cause every DataTable filled
while on screen shares: DataTable measures auto-width columns only when it next goes idle and keeps the
lines it painted before that, so on a busy machine a paint in between showed the cells cut to the old
widths.  Here the paint in between is forced: the answer's handler runs, then a line is rendered at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.widgets import DataTable

from tests.tui.conftest import settle
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_admin_fake import open_admin
from tui.app import MusubiApp
from tui.screens.admin.audit import AuditPane
from tui.screens.admin.members import MembersPane

TS = "2026-01-02T09:00:00.000000Z"
P = TypeVar("P", MembersPane, AuditPane)


def painted(table: DataTable[Any]) -> list[str]:
    return [table.render_line(y).text for y in range(1, 1 + table.row_count)]


async def paints_after(tabs: int, pane_type: type[P], answer: Callable[[P], None]) -> list[list[str]]:
    """The pane's table rows painted right after ``answer(pane)`` (a worker's answer arriving), then once idle."""
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(150, 40)) as pilot:
        await open_admin(pilot, tabs)
        pane = app.screen.query_one(pane_type)
        table = pane.query_one(DataTable)
        assert table.row_count  # the first load is in: its columns are as wide as its cells
        answer(pane)
        first_paint = painted(table)  # ... painted before the table is idle
        await settle(pilot)  # type: ignore[arg-type]
        return [first_paint, painted(table)]


async def test_members_loaded_with_longer_names_paint_whole_at_once() -> None:
    members: Any = [
        {"user": "alice", "project": None, "role": "owner", "since": TS, "added_by": "engine"},
        {"user": "konstantin.alexandrou", "project": "payments-service", "role": "viewer", "since": TS,
         "added_by": "alice"},
    ]

    def reloaded(pane: MembersPane) -> None:
        pane.on_members_pane_loaded(MembersPane.Loaded(members, pane.roles, pane.projects))

    for lines in await paints_after(1, MembersPane, reloaded):
        assert "konstantin.alexandrou" in lines[1] and "project payments-service" in lines[1], lines


async def test_audit_events_with_a_longer_actor_paint_whole_at_once() -> None:
    def refreshed(pane: AuditPane) -> None:
        newest = pane.events[0]
        event: Any = {**newest, "seq": int(newest["seq"]) + 1, "actor": "svc-nightly-reconciliation",
                      "action": "quota.set_limit_for_project"}
        events: Any = [event, *pane.events]
        pane.on_audit_pane_loaded(AuditPane.Loaded(events))

    for lines in await paints_after(3, AuditPane, refreshed):
        for cell in ("svc-nightly-reconciliation", "quota.set_limit_for_project"):  # the rest is past the panel
            assert cell in lines[0], lines


async def test_cells_are_measured_as_the_table_shows_them_and_a_wider_one_asks_for_a_new_fill() -> None:
    from rich.text import Text
    from textual.app import App, ComposeResult

    from tui.widgets.table_fill import cell_width, cells_fit, fill_table

    assert cell_width("[b]bold[/b]") == 4  # a str cell is markup to DataTable
    assert cell_width("a [/x] b") == len("a [/x] b")  # not markup after all: shown as typed
    assert cell_width(Text("● running")) == 9 and cell_width(1.5) == 4 and cell_width(12) == 2
    assert cell_width("日本") == 4  # wide characters take two cells

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    app = One()
    async with app.run_test(size=(60, 10)):
        table = app.query_one(DataTable)
        keys = fill_table(table, ["run", ("state", "st")], [("r1", ["r1", Text("waiting")]), ("r2", ["r2", "ok"])])
        assert [c.width for c in table.ordered_columns] == [3, 7]
        assert cells_fit(table, keys, [["r1", "running"], ["r2", "done"]])
        assert not cells_fit(table, keys, [["r1", "interrupted"], ["r2", "done"]])  # the Dashboard fills again
        fill_table(table, ["run", ("state", "st")], [("r1", ["r1", "ok"])])
        assert [c.width for c in table.ordered_columns] == [3, 5]  # narrower rows: the column shrinks too
