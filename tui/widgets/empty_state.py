"""An honest empty state: what a screen will hold, and how to get there today."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class EmptyState(VerticalScroll):
    """Explains a screen that has nothing to show yet; focusable so it scrolls and maximises."""

    ALLOW_MAXIMIZE = True
    can_focus = True
    DEFAULT_CSS = """
    EmptyState { height: 1fr; padding: 0 1; }
    EmptyState > .empty-title { text-style: bold; margin-bottom: 1; }
    EmptyState > .empty-section { text-style: bold underline; margin-top: 1; }
    EmptyState > Static { max-width: 100; }
    """

    def __init__(self, title: str, will_hold: list[str], today: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._title = title
        self._will_hold = will_hold
        self._today = today

    def compose(self) -> ComposeResult:
        yield Static(self._title, classes="empty-title", markup=False)
        yield Static("What this screen will hold", classes="empty-section")
        yield Static("\n".join(f" • {line}" for line in self._will_hold), markup=False)
        yield Static("How to get there today", classes="empty-section")
        yield Static("\n".join(f" • {line}" for line in self._today), markup=False)
