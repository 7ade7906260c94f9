"""The top line: the six modes with their keys, the current one marked by a symbol and brackets."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from tui.screens.modes import MODES


class ModeBar(Widget):
    """Shows which mode is active; click or press F2..F7 / 1..6 to switch.

    Drawn in ``render`` from the current width, so a resize needs no extra layout pass.
    """

    DEFAULT_CSS = """
    ModeBar { height: 1; width: 1fr; dock: top; }  /* docked: stays on top when F10 maximises a panel */
    """

    def __init__(self, current: str) -> None:
        super().__init__(id="mode-bar")
        self.current = current

    def render(self) -> Content:
        return self._content(self.size.width or 80)

    def _content(self, width: int) -> Content:
        wide = width >= 110
        parts: list[Content] = []
        for m in MODES:
            key = f"{m.fkey.upper()}/{m.digit}" if wide else m.digit
            label = f"{key} {m.title}"
            if m.name == self.current:
                # Marked by brackets and a symbol as well as style: never by colour alone.
                item = Content.from_markup("[b reverse]▸$label◂[/]", label=label)
            else:
                item = Content.from_markup(f"[@click=app.mode('{m.name}')] $label [/]", label=label)
            parts.append(item)
        bar = Content(" ").join(parts)
        brand = Content.from_markup("[dim]Musubi Workstation[/]") if width >= 100 else Content("")
        pad = max(1, width - bar.cell_length - brand.cell_length - 1)
        return Content.assemble(bar, " " * pad, brand)
