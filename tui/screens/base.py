"""The frame every mode shares: mode bar on top, the mode's body, status bar and footer below."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer

from tui.context import AppContext, app_ctx
from tui.widgets.mode_bar import ModeBar
from tui.widgets.status_bar import StatusBar


class ModeScreen(Screen[None]):
    """Base of the six mode screens.  Subclasses set ``MODE`` and ``HELP`` and implement ``compose_body``."""

    MODE: ClassVar[str] = "dashboard"
    HELP: ClassVar[str] = ""
    ALLOW_IN_MAXIMIZED_VIEW = "ModeBar, StatusBar, Footer"

    @property
    def ctx(self) -> AppContext:
        return app_ctx(self)

    def compose(self) -> ComposeResult:
        yield ModeBar(self.MODE)
        with Container(id="body"):
            yield from self.compose_body()
        yield StatusBar(id="status-bar")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()
