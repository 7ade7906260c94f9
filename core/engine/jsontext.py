"""JSON encoding on the engine's hot paths.

Why not plain ``json.dumps(x, **kw)``: with any keyword argument it builds a
new ``JSONEncoder`` per call, which costs as much as encoding a small answer.
The encoders here are built once.  Audit events are immutable once
acknowledged and ``audit list`` serves the same newest events over and over, so
an event keeps its encoded text (:class:`EncodedEvent`) and a listing of them
is joined from those texts rather than encoded again.
"""

from __future__ import annotations

import json
from typing import Any

# The answer encoder: non-JSON values (datetimes, paths) become their str().
ANSWER = json.JSONEncoder(ensure_ascii=False, default=str)


class EncodedEvent(dict[str, Any]):
    """An acknowledged audit event (never mutated) that remembers its JSON text."""

    __slots__ = ("_text",)

    def text(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text: str = ANSWER.encode(self)
            return self._text


class EventList(list[EncodedEvent]):
    """A listing of :class:`EncodedEvent` values, encoded by joining their texts."""

    def text(self) -> str:
        return "[" + ", ".join(e.text() for e in self) + "]"  # the separator json.dumps uses


def answer_text(data: Any) -> str:
    """The JSON text of an answer."""
    if isinstance(data, EventList):
        return data.text()
    return ANSWER.encode(data)
