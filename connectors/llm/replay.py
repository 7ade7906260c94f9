"""The replay provider: recorded responses, not a model — for offline tutorials and demos.

Configured as ``[providers.demo] kind = "replay", file = "path/to/replies.toml"`` (or
``.json``).  The file holds replies, each with the text and the usage it was recorded with::

    [[reply]]
    match = "requirements"   # optional: a word of the last user message (case-insensitive)
    text = "1. WHEN the user ... THE SYSTEM SHALL ..."
    input_tokens = 120
    output_tokens = 80
    stop_reason = "end_turn"   # optional

JSON: ``{"replies": [{...}, ...]}`` or a bare list.  A call gets the first reply whose
``match`` occurs in its last user message; otherwise the replies without ``match`` in turn
(cycling).  ``is_replay`` is True and its label — "replay (recorded responses, not a
model)" — appears wherever it is listed; the provider set never picks it for a run that did
not ask for replay by name.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.orchestration.contracts import (
    ChatRequest,
    Finished,
    ProviderCheck,
    ProviderError,
    ProviderSettings,
    StreamEvent,
    TextDelta,
    Usage,
)
from core.orchestration.providers import REPLAY_LABEL

_CHUNK = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class RecordedReply:
    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str = "end_turn"
    match: str | None = None


def _reply(raw: Any, where: str) -> RecordedReply:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a reply must be a table with text, input_tokens and output_tokens")
    unknown = set(raw) - {"text", "input_tokens", "output_tokens", "stop_reason", "match"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a reply has text, input_tokens, "
                         "output_tokens, stop_reason and match")
    text = raw.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string")
    counts = []
    for key in ("input_tokens", "output_tokens"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{where}: '{key}' must be a whole number >= 0 (the usage recorded with the reply)")
        counts.append(value)
    match = raw.get("match")
    if match is not None and (not isinstance(match, str) or not match.strip()):
        raise ValueError(f"{where}: 'match' must be a non-empty string")
    return RecordedReply(text, counts[0], counts[1], str(raw.get("stop_reason") or "end_turn"), match)


def load_replies(path: Path) -> list[RecordedReply]:
    """Read and check a replay file; a ValueError names the file, the reply and the fix."""
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"replay file {path}: cannot read it ({exc.strerror}); fix the path in 'file'") from None
    try:
        if path.suffix.lower() == ".json":
            data: Any = json.loads(raw_text)
        else:
            import tomllib

            data = tomllib.loads(raw_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"replay file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    entries = data if isinstance(data, list) else (data.get("reply") or data.get("replies") or [])
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"replay file {path} holds no replies: add [[reply]] tables (TOML) or a \"replies\" list")
    return [_reply(raw, f"replay file {path}, reply #{i + 1}") for i, raw in enumerate(entries)]


class ReplayProvider:
    """Replays recorded replies; never a model."""

    kind = "replay"
    is_replay = True
    label = REPLAY_LABEL

    def __init__(self, settings: ProviderSettings, *, chunk_delay_s: float | None = None) -> None:
        self.settings = settings
        file = settings.extra.get("file")
        if not file:
            raise ValueError(f"provider {settings.name}: kind \"replay\" needs file = \"path/to/replies.toml\"")
        self.path = Path(str(file)).expanduser()
        self.replies = load_replies(self.path)
        delay = chunk_delay_s if chunk_delay_s is not None else settings.extra.get("chunk_delay_s", 0.0)
        self.chunk_delay_s = float(delay)  # demos may slow the replay to look like streaming
        self._turn = 0

    def __repr__(self) -> str:
        return f"ReplayProvider(name={self.settings.name!r}, file={str(self.path)!r}, {REPLAY_LABEL})"

    def pick(self, request: ChatRequest) -> RecordedReply:
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "").lower()
        for reply in self.replies:
            if reply.match and reply.match.lower() in last_user:
                return reply
        plain = [r for r in self.replies if not r.match]
        if not plain:
            raise ProviderError("bad_request", f"{self.settings.name} ({REPLAY_LABEL}): no recorded reply matches "
                                "this request; add a reply without 'match' to the replay file",
                                provider=self.settings.name)
        reply = plain[self._turn % len(plain)]
        self._turn += 1
        return reply

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        reply = self.pick(request)
        for piece in _CHUNK.findall(reply.text):
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            yield TextDelta(piece)
        yield Finished(Usage(reply.input_tokens, reply.output_tokens), reply.stop_reason, "replay")

    async def check(self) -> ProviderCheck:
        started = time.monotonic()
        try:
            count = len(load_replies(self.path))
        except ValueError as exc:
            return ProviderCheck(False, str(exc), (time.monotonic() - started) * 1000)
        return ProviderCheck(True, f"{REPLAY_LABEL}: {count} recorded replies in {self.path}",
                             (time.monotonic() - started) * 1000)

    async def aclose(self) -> None:
        return None


def replay_provider(settings: ProviderSettings) -> ReplayProvider:
    """Entry point ``replay``."""
    return ReplayProvider(settings)
