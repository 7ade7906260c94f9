"""Records that are one row of a table: the shared ``row()``/``from_row`` of the feature services' dataclasses.

The run service (:mod:`core.orchestration.records`) and provider fine-tuning (:mod:`core.finetune.records`)
keep each table's rows as dataclasses; what turns one into an :class:`~core.storage.base.Insert` row and
back is the same for all of them, so it lives here.  No I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import fields
from datetime import datetime
from typing import Any, ClassVar

from core.audit import format_ts

MAX_TEXT = 2_000  # characters of a reason or error message a row keeps


def new_id(prefix: str) -> str:
    """A fresh id such as ``r-0123456789ab`` (``prefix`` then 12 hex digits)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def ts(v: datetime | None) -> str | None:
    """A timestamp as the API answers it, or None."""
    return format_ts(v) if v else None


def cut(text: str | None) -> str | None:
    """``text`` kept to :data:`MAX_TEXT` characters (None for none or empty)."""
    return text[:MAX_TEXT] if text else None


class Row:
    """A record that is one row of its table: ``row()`` and ``from_row`` come from the dataclass's fields.

    ``COLUMNS`` renames attributes whose column is named otherwise; ``LIVE`` names attributes that
    are not columns; ``CUT`` names text columns kept to :data:`MAX_TEXT` characters.  Fields
    annotated ``int`` are read back as ``int`` (DuckDB may answer a wider integer type).
    """

    COLUMNS: ClassVar[dict[str, str]] = {}
    LIVE: ClassVar[frozenset[str]] = frozenset()
    CUT: ClassVar[frozenset[str]] = frozenset({"reason", "error", "detail"})

    def row(self) -> dict[str, Any]:
        """The full row, for an :class:`~core.storage.base.Insert`."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name in self.LIVE:
                continue
            v = getattr(self, f.name)
            out[self.COLUMNS.get(f.name, f.name)] = cut(v) if f.name in self.CUT else v
        return out

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Any:
        """The record of a row read back at start."""
        kw: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in cls.LIVE:
                continue
            v = r[cls.COLUMNS.get(f.name, f.name)]
            kw[f.name] = int(v) if f.type == "int" and v is not None else v
        return cls(**kw)
