"""Server-sent events, read incrementally from an aiohttp body.

An event is ``field: value`` lines ended by a blank line (``\\r\\n`` tolerated); events may
arrive split over reads or several in one read, so the parser buffers lines, not reads.
OpenAI sends only ``data:`` lines; Anthropic sends ``event:`` + ``data:``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class SseEvent:
    event: str  # "message" when the server named none
    data: str


async def sse_events(content: aiohttp.StreamReader) -> AsyncIterator[SseEvent]:
    """Yield each complete event of the stream; a trailing event without its blank line is yielded too."""
    event = ""
    data: list[str] = []
    async for raw in content:  # aiohttp yields whole lines, however the bytes were split
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield SseEvent(event or "message", "\n".join(data))
