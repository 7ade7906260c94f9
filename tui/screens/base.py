"""The frame every mode shares: mode bar on top, the mode's body, status bar and footer below."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.dom import DOMNode
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Footer

from tui.context import AppContext, app_ctx
from tui.screens.actions import (
    ACTIONS,
    PaletteAction,
    mark_bindings,
    node_actions,
    palette_entry,
    refuse_if_not_allowed,
)
from tui.screens.modes import BY_NAME
from tui.widgets.mode_bar import ModeBar
from tui.widgets.status_bar import StatusBar
from tui.widgets.tutorial_panel import TutorialDock
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
            # The running tutorial's step, beside whatever this mode shows (hidden while none runs).
            yield TutorialDock()
        yield StatusBar(id="status-bar")
        # The key-hint footer builds a widget per binding (~70 ms); mounting it right after
        # the first frame lets the screen itself appear sooner.
        yield Lazy(Footer(compact=True))

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # Subclasses' own on_mount runs too (Textual calls the handler of every class in the MRO).
        self.ctx.data_changed.subscribe(self, self._marks_changed)
        self.call_after_refresh(self.mark_actions)

    def _marks_changed(self, what: str) -> None:
        if what == "whoami":
            self.mark_actions()

    def action_nodes(self) -> list[DOMNode]:
        """The screen and the widgets whose key bindings are actions of the table (admin panes)."""
        return [self, *(w for w in self.walk_children() if any(b.id in ACTIONS for b in type(w).BINDINGS
                                                             if isinstance(b, Binding)))]

    def mark_actions(self) -> None:
        """Footer marks (✗) on actions the user's permissions do not allow."""
        for node in self.action_nodes():
            mark_bindings(node, self.ctx)

    def palette_actions(self) -> list[PaletteAction]:
        """Every action of this screen for the command palette, with its key and, if not allowed, why."""
        title = BY_NAME[self.MODE].title
        return [palette_entry(title, b, self.ctx, keys, partial(self.run_action, b.action))
                for b, keys in node_actions(self)]

    def refuse(self, binding_id: str) -> bool:
        """True (and a notification naming the permission) when the user may not run this action."""
        return refuse_if_not_allowed(self, self.ctx, binding_id)
