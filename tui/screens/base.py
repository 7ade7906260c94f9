"""The frame every mode shares: mode bar on top, the mode's body, status bar and footer below."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Container
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Footer

from tui.context import AppContext, app_ctx
from tui.widgets.mode_bar import ModeBar
from tui.widgets.status_bar import StatusBar
from tui.workers import WorkerContract

STYLES = Path(__file__).resolve().parent.parent / "styles"
# Dialog styles load with the first dialog shown (Screen.CSS_PATH), not at start-up.
DIALOG_CSS = STYLES / "dialogs.tcss"


class ModeScreen(WorkerContract, Screen[None]):
    """Base of the six mode screens.  Subclasses set ``MODE`` and ``HELP`` and implement ``compose_body``.

    Every worker a mode screen runs reports its failures (``WorkerContract``): none vanish.
    """

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
        # The key-hint footer builds a widget per binding (~70 ms); mounting it right after
        # the first frame lets the screen itself appear sooner.
        yield Lazy(Footer(compact=True))

    def compose_body(self) -> ComposeResult:
        yield from ()
