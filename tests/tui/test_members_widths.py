"""Admin ▸ Members: the table's columns follow the data of every load, not the first one (issue 15 item 9).

Seen as ``alic tenant viewe``: columns sized by one load cut off the names of the next.  The table
is reloaded with short names, then long ones, then short ones again, at the design size 80×24.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from tests.tui.conftest import settle
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_admin_fake import open_admin
from tui.app import MusubiApp

TS = "2026-01-02T09:00:00.000000Z"
SHORT = [("al", None, "owner"), ("bo", "web", "member")]
LONG = [("alexandra.konstantinou", None, "owner"), ("bo", "webshop-payments-service", "viewer")]


def bindings(rows: list[tuple[str, str | None, str]]) -> list[dict[str, Any]]:
    return [{"user": u, "project": p, "role": r, "since": TS, "added_by": "engine"} for u, p, r in rows]


def cells(table: DataTable[str]) -> list[list[str]]:
    """What each cell would need to be read whole, row by row."""
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def assert_columns_fit(table: DataTable[str]) -> None:
    for row in cells(table):
        for column, value in zip(table.ordered_columns, row, strict=True):
            assert column.get_render_width(table) >= len(value) + 2, (str(column.label), value)


def visible_text(table: DataTable[str]) -> str:
    return "\n".join(table.render_line(y).text for y in range(table.size.height))


async def reload_with(pilot: Any, api: FakeEngineApi, rows: list[tuple[str, str | None, str]]) -> None:
    api.data["members"][:] = bindings(rows)
    await pilot.press("r")
    await settle(pilot)


async def test_member_columns_follow_each_load_at_80x24() -> None:
    api = FakeEngineApi()
    api.data["members"][:] = bindings([("alice", None, "owner"), *SHORT])  # alice keeps her owner rights
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_admin(pilot, 1)
        table = app.screen.query_one("#members-table", DataTable)
        first = [c.get_render_width(table) for c in table.ordered_columns]
        assert_columns_fit(table)

        await reload_with(pilot, api, [("alice", None, "owner"), *LONG])
        assert_columns_fit(table)
        widened = [c.get_render_width(table) for c in table.ordered_columns]
        assert widened[0] > first[0] and widened[1] > first[1], (first, widened)
        # The long user name reads whole from the left edge (the first column is never scrolled off).
        assert "alexandra.konstantinou" in visible_text(table)

        await reload_with(pilot, api, [("alice", None, "owner"), *SHORT])
        assert_columns_fit(table)
        # Back to short names: the columns shrink again, so Scope and Role are on screen at 80×24.
        assert [c.get_render_width(table) for c in table.ordered_columns] == first
        text = visible_text(table)
        for user, project, role in SHORT:
            assert user in text and role in text and (project or "tenant") in text, text
