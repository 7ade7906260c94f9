"""A selection list whose boxes say ``[x]`` or ``[ ]``: which rows are chosen shows without colour.

Textual's SelectionList draws the same glyph for chosen and unchosen rows and tells them apart by
colour only, which at 16 colours or NO_COLOR makes every row look the same (issue 15 item 2).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import SelectionList
from textual.widgets.option_list import OptionDoesNotExist

CHECKED, UNCHECKED = "[x]", "[ ]"


class CheckList(SelectionList[str]):
    """A :class:`SelectionList` drawing ``[x]`` / ``[ ]`` before each row."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        if len(segments) < 4 or selection is None:
            return strip
        # The parent drew left side, inner glyph, right side, a space, then the prompt: replace the first three.
        chosen = selection.value in self._selected
        style = segments[1].style or Style()
        meta = Style(meta={"option": self.scroll_offset.y + y})
        box = Segment(CHECKED if chosen else UNCHECKED, style + meta)
        return Strip([box, *segments[3:]], strip.cell_length)
