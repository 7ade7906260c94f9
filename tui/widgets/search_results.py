"""The Search screen's results panel: a table of hits, or an empty state in its place.

The screen decides what to show (an answer, or a message in words); this widget draws it: the
columns for the width (a language column from :data:`WIDE` columns), the rows clipped to the
panel, and a redraw of the same answer that keeps the cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.screens import search_view as view
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.responses import SearchAnswer, SearchHit

WIDE = 100  # from this many columns: side by side with the preview, and a language column


class ResultsNote(Static, can_focus=True):
    """An empty state in the results panel; focusable, so Esc can leave the query box to it."""


class SearchResults(Panel):
    """Hits in a table (``#search-results``) or a message (``#search-message``), titled with the count."""

    def __init__(self, *, id: str | None = None) -> None:
        self.table: DataTable[str] = DataTable(id="search-results", cursor_type="row", zebra_stripes=True)
        self.note = ResultsNote(view.WAITING, id="search-message", markup=False)
        super().__init__(self.table, self.note, title="Results", id=id)
        self.wide: bool | None = None
        self._filled: tuple[int, int, bool] | None = None  # (answer seq, width, wide) the table shows

    def set_wide(self, wide: bool) -> bool:
        """Columns for the width class; True when they changed (the rows must be drawn again)."""
        if wide == self.wide:
            return False
        self.wide = wide
        self._filled = None
        fill_table(self.table, self._labels(), [])
        return True

    def _labels(self) -> tuple[str, ...]:
        return ("location", "symbol", "lang", "score") if self.wide else ("location", "symbol", "score")

    def show_message(self, text: str) -> None:
        """An empty state (in words) in place of the table."""
        self.note.update(text)
        self.note.display = True
        self.table.display = False
        self.border_title = "Results"
        self._filled = None

    def show(self, answer: SearchAnswer, hits: list[SearchHit], seq: int, width: int) -> int | None:
        """Draw ``hits`` (answer number ``seq``) for a panel ``width`` columns wide.

        Returns the row under the cursor when the rows were drawn (the preview follows it), None when
        the same answer at the same width is already shown.  A redraw of the same answer keeps the cursor.
        """
        filled = (seq, width, bool(self.wide))
        if filled == self._filled:
            return None
        table = self.table
        cursor = table.cursor_row if self._filled is not None and self._filled[0] == seq else 0
        self._filled = filled
        was_focused = self.note.has_focus
        fill_table(table, self._labels(),
                   [(str(i), row) for i, row in enumerate(view.result_rows(hits, wide=bool(self.wide), width=width))])
        table.display = True
        self.note.display = False
        dense = f"{answer['dense_coverage'] * 100:.0f}%"
        partial = "" if answer["complete"] else f" · dense {dense}: more as indexing goes on"
        self.border_title = f"Results {len(hits)} · {answer['took_ms']:.0f} ms{partial}"
        if was_focused:
            table.focus()
        cursor = min(max(cursor, 0), len(hits) - 1)
        table.move_cursor(row=cursor)
        return cursor

    def selected_row(self, count: int) -> int | None:
        """The cursor's row among ``count`` hits, None while the table is not shown."""
        if not count or not self.table.display:
            return None
        return min(max(self.table.cursor_row, 0), count - 1)

    def focus_target(self) -> Widget:
        """Where Esc from the query box goes: the table when shown, else the message."""
        return self.table if self.table.display else self.note
