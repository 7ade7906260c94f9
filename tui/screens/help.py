"""F1: help for the focused widget, the screen, and every key that works here (with binding ids)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import DataTable, Markdown, Static

from tui.screens.base import DIALOG_CSS


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str
    binding_id: str


def widget_help(focused: Widget | None, screen: Screen[object]) -> tuple[str, str]:
    """(name, markdown) of the nearest focused widget or ancestor that has ``HELP``."""
    node: object = focused
    while isinstance(node, Widget) and node is not screen:
        text = getattr(type(node), "HELP", None)
        if text:
            return type(node).__name__, str(text)
        node = node.parent
    return type(screen).__name__, str(getattr(screen, "HELP", "") or "No help for this screen yet.")


def key_rows(screen: Screen[object]) -> list[KeyRow]:
    """Active bindings of ``screen`` grouped by binding, keys joined; hidden system keys left out."""
    app = screen.app
    grouped: dict[tuple[str, str], tuple[list[str], Binding]] = {}
    for key, active in screen.active_bindings.items():
        b = active.binding
        if b.system or not active.enabled:
            continue
        ident = (b.id or b.action, b.description or b.action)
        keys, _ = grouped.setdefault(ident, ([], b))
        display = app.get_key_display(Binding(key, b.action))
        if display not in keys:
            keys.append(display)
    rows = [KeyRow(", ".join(keys), b.description or b.action, b.id or "—") for keys, b in grouped.values()]
    return sorted(rows, key=lambda r: (r.binding_id == "—", r.binding_id))


class HelpScreen(ModalScreen[None]):
    """Shows what the focused widget does and the keys of this screen; escape or F1 closes it."""

    CSS_PATH = DIALOG_CSS

    BINDINGS = [Binding("escape,f1,q", "close", "Close help", id="help_close")]

    def __init__(self, title: str, widget_name: str, widget_markdown: str, screen_markdown: str, rows: list[KeyRow]) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._widget_name = widget_name
        self._widget_md = widget_markdown
        self._screen_md = screen_markdown
        self._rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="help-dialog"):
            yield Static(f"Help — {self._title}", classes="dialog-title", markup=False)
            with VerticalScroll(id="help-scroll"):
                yield Static(f"Focused: {self._widget_name}", classes="help-section", markup=False)
                yield Markdown(self._widget_md)
                if self._screen_md and self._screen_md != self._widget_md:
                    yield Static("This screen", classes="help-section")
                    yield Markdown(self._screen_md)
                yield Static("Keys here (remap by id in [keymap] of config.toml)", classes="help-section")
                table: DataTable[str] = DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
                yield table
            yield Static("escape / F1 close · ctrl+p lists every command", classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("Keys", "Does", "Binding id")
        for r in self._rows:
            table.add_row(r.keys, r.description, r.binding_id)
        self.query_one("#help-scroll", VerticalScroll).focus()  # start at the widget's help, not the table

    def action_close(self) -> None:
        self.dismiss(None)
