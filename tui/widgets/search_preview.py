"""The Search screen's preview panel: a hit's file with a few lines around it, the hit's lines marked ▶.

The file is read and highlighted in a thread worker (:func:`tui.screens.search_view.build_preview`);
every request carries a number, and an answer for a row the cursor has left is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.screens import search_view as view
from tui.widgets.panel import Panel
from tui.workers import WorkerContract

if TYPE_CHECKING:
    from core.api.responses import SearchHit


class SearchPreview(WorkerContract, Panel):
    """The preview (``#search-preview`` in a scroll view), titled with the hit's location."""

    WORKER_TITLES: ClassVar[dict[str, str]] = {"search-preview": "Preview"}

    def __init__(self, *, id: str | None = None) -> None:
        self.body = Static("", id="search-preview", markup=False)
        self.scroll = VerticalScroll(self.body, id="search-preview-scroll")
        super().__init__(self.scroll, title="Preview", id=id)
        self._seq = 0  # the newest preview asked for; older answers are dropped

    def show_hint(self) -> None:
        """No hit to show: say what will show here (and drop a preview on its way)."""
        self._seq += 1
        self.body.update(view.PREVIEW_HINT)
        self.border_title = "Preview"

    def show(self, hit: SearchHit, root: str | None, theme: str) -> None:
        """Preview ``hit`` from the project at ``root`` (the indexed snippet when the file is gone or changed)."""
        self._seq += 1
        self.build(hit, root, theme, self._seq)

    @work(group="search-preview", exit_on_error=False, thread=True)
    def build(self, hit: SearchHit, root: str | None, theme: str, seq: int) -> None:
        body, note = view.build_preview(root, hit, theme)
        self.app.call_from_thread(self._set, seq, body, note)

    def _set(self, seq: int, body: Any, note: str) -> None:
        if seq != self._seq:
            return  # the cursor moved on
        self.body.update(body)
        self.border_title = f"Preview {note}"
        self.scroll.scroll_home(animate=False)
