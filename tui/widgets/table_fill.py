"""Filling a DataTable with columns as wide as their cells from the first paint after the fill.

Textual's DataTable measures auto-width columns only when it next goes idle, and keeps the lines it
painted before that (its width update neither clears its line caches nor bumps its update count).  A
table filled while on screen, by a worker's answer, and painted before that idle (a busy machine) stayed
squeezed to its labels' widths.  :func:`fill_table` gives each column its exact width as it fills, so
there is nothing left to measure later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.errors import MarkupError
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

Column = str | tuple[str, str]  # a label, or (label, column key)
Row = tuple[str | None, Sequence[Any]]  # (row key, its cells)


def cell_width(cell: object) -> int:
    """Terminal cells ``cell`` needs to read whole in a DataTable (a ``str`` is markup there, as here)."""
    if isinstance(cell, Text):
        text = cell
    elif isinstance(cell, str):
        try:
            text = Text.from_markup(cell)
        except MarkupError:
            return cell_len(cell)
    elif isinstance(cell, float):
        return len(f"{cell:.2f}")  # DataTable's own formatting of a float
    else:
        return cell_len(str(cell))
    return max(cell_len(line) for line in text.plain.split("\n"))


def fill_table(table: DataTable[Any], columns: Sequence[Column], rows: Iterable[Row]) -> list[ColumnKey]:
    """Clear ``table`` (columns too) and fill it, each column exactly as wide as its widest cell or label.

    Columns are given again on every fill, so they also shrink when the new rows are narrower (DataTable's
    auto widths only ever grow).  Answers the column keys, in order.
    """
    rows = list(rows)
    table.clear(columns=True)
    keys: list[ColumnKey] = []
    for i, column in enumerate(columns):
        label, key = (column, None) if isinstance(column, str) else column
        width = max([cell_width(label), *(cell_width(cells[i]) for _key, cells in rows)])
        keys.append(table.add_column(label, key=key, width=width))
    for key, cells in rows:
        table.add_row(*cells, key=key)
    return keys


def cells_fit(table: DataTable[Any], columns: Sequence[ColumnKey], rows: Iterable[Sequence[Any]]) -> bool:
    """Whether every cell of ``rows`` fits the width :func:`fill_table` gave its column (else fill again)."""
    widths = [table.columns[key].width for key in columns]
    return all(cell_width(c) <= w for cells in rows for c, w in zip(cells, widths, strict=True))
