"""F1: help for the focused widget, the screen, and every key that works here (with binding ids)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Markdown, Static

from tui.screens.base import DIALOG_CSS


@dataclass(frozen=True)
class KeyRow:
    keys: str
    description: str
    binding_id: str
    scope: str = "screen"  # "screen" (this screen and the focused widget) or "global" (the app's)


def widget_name(focused: Widget | None, screen: Screen[object]) -> str:
    """The focused widget in words: its panel's title, its own title or its id, never a class name."""
    if focused is None:
        return "nothing (the screen itself)"
    own = _words(focused)
    node: object = focused.parent
    while isinstance(node, Widget) and node is not screen:
        title = str(node.border_title or "")
        if title:
            return f"{own} in the {title} panel" if own else f"the {title} panel"
        node = node.parent
    return own or "a control of this screen"


def _words(widget: Widget) -> str:
    kind = next((_KINDS[c.__name__] for c in type(widget).__mro__ if c.__name__ in _KINDS), "control")
    label = str(widget.border_title or "") or (widget.id or "").replace("-", " ").replace("_", " ")
    return f"the {kind} {label!r}" if label else f"the {kind}"


_KINDS = {
    "Tree": "tree", "Input": "text field", "DataTable": "table", "SelectionList": "list", "CheckList": "list",
    "VerticalScroll": "scroll view", "Select": "choice", "Button": "button", "Tabs": "tabs", "OptionList": "list",
}


def widget_help(focused: Widget | None, screen: Screen[object]) -> tuple[str, str]:
    """(name in words, markdown) of the focused widget; the help is its own or its nearest ancestor's ``HELP``."""
    node: object = focused
    while isinstance(node, Widget) and node is not screen:
        text = getattr(type(node), "HELP", None)
        if text:
            return widget_name(focused, screen), str(text)
        node = node.parent
    return widget_name(focused, screen), str(getattr(screen, "HELP", "") or "No help for this screen yet.")


def key_rows(screen: Screen[object]) -> list[KeyRow]:
    """Active bindings of ``screen``: this screen's and the focused widget's first, then the app's.

    Keys of one binding are joined; hidden system keys are left out.
    """
    app = screen.app
    grouped: dict[tuple[str, str], tuple[list[str], Binding, str]] = {}
    for key, active in screen.active_bindings.items():
        b = active.binding
        if b.system or not active.enabled:
            continue
        ident = (b.id or b.action, b.description or b.action)
        scope = "global" if active.node is app else "screen"
        keys, _, _ = grouped.setdefault(ident, ([], b, scope))
        display = app.get_key_display(Binding(key, b.action))
        if display not in keys:
            keys.append(display)
    rows = [KeyRow(", ".join(keys), b.description or b.action, b.id or "—", scope) for keys, b, scope in grouped.values()]
    return sorted(rows, key=lambda r: (r.scope != "screen", r.binding_id == "—", r.binding_id))


def keys_text(rows: list[KeyRow], scope: str) -> Content:
    """Rows of one scope as aligned plain text (no markup: ids and keys print as they are)."""
    rows = [r for r in rows if r.scope == scope]
    if not rows:
        return Content("(none)")
    kw = max(len(r.keys) for r in rows)
    dw = max(len(r.description) for r in rows)
    return Content("\n".join(f"{r.keys:<{kw}}  {r.description:<{dw}}  {r.binding_id}" for r in rows))


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
        # Keys first (this screen's, then global), as plain text in the one scroll view: at 80×24
        # every key is reachable with the arrow keys or page down, with nothing nested to get stuck in.
        with Vertical(classes="dialog dialog-wide", id="help-dialog"):
            yield Static(f"Help — {self._title}", classes="dialog-title", markup=False)
            with VerticalScroll(id="help-scroll"):
                yield Static(f"Focused: {self._widget_name}", classes="help-section", markup=False)
                yield Markdown(self._widget_md)
                yield Static("Keys on this screen (keys · what · binding id)", classes="help-section", markup=False)
                yield Static(keys_text(self._rows, "screen"), id="help-keys-screen", markup=False)
                yield Static("Keys everywhere (remap by id in [keymap] of config.toml)", classes="help-section",
                             markup=False)
                yield Static(keys_text(self._rows, "global"), id="help-keys-global", markup=False)
                if self._screen_md and self._screen_md != self._widget_md:
                    yield Static("This screen", classes="help-section", markup=False)
                    yield Markdown(self._screen_md)
            yield Static("escape / F1 close · ↑↓ pgup pgdn scroll · ctrl+p lists every command", classes="dialog-hint",
                         markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-scroll", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
