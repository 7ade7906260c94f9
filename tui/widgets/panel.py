"""A titled, bordered container that F10 can maximise."""

from __future__ import annotations

from textual.containers import Vertical


class Panel(Vertical):
    """A bordered section of a screen.  Maximising a focused widget inside maximises its panel."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    Panel {
        border: round $foreground 30%;
        border-title-color: $foreground;
        height: 1fr;
        padding: 0 1;
    }
    Panel:focus-within { border: round $primary; border-title-style: bold; }
    /* Maximised (F10): the screen's width, whatever share it had beside other panels (a 3fr
       share of the whole screen pushed the right border off it). */
    Panel.-maximized { width: 1fr !important; height: 1fr !important; }
    """

    def __init__(self, *children: object, title: str, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(*children, id=id, classes=classes)  # type: ignore[arg-type]
        self.border_title = title
