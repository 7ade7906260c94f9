"""Generic modal dialogs: confirm an action, or show a message."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.screens.base import DIALOG_CSS


class ConfirmModal(ModalScreen[bool]):
    """Ask yes/no; dismisses with True only on an explicit confirm (y or the confirm button)."""

    CSS_PATH = DIALOG_CSS

    BINDINGS = [
        Binding("y", "confirm", "Confirm", id="confirm_yes"),
        Binding("n,escape", "cancel", "Cancel", id="confirm_no"),
    ]
    HELP = "Confirm with **y** (or the confirm button); **n** or **escape** cancels and changes nothing."

    def __init__(self, title: str, body: str, confirm_label: str = "Confirm", *, danger: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._body = body
        self._label = confirm_label
        self._danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self._title, classes="dialog-title", markup=False)
            yield Static(self._body, classes="dialog-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._label} (y)", id="confirm", variant="error" if self._danger else "primary")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # the safe choice has focus

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
