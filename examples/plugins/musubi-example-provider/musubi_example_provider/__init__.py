"""An offline provider plug-in for Musubi: it echoes the request back, so runs work without a key.

Configured in config.toml as ``[providers.echo]`` with ``kind = "example-echo"`` and the
registry models it should serve (``models = ["gpt-5.4-mini"]``).  It is not a model: it answers
every call with the first line of the last user message, numbered, and reports usage in
whitespace-separated words (a real provider reports what the vendor's API counted).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

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


class EchoProvider:
    """Streams the request's last user line back; usage is counted in words."""

    is_replay = False  # a replay provider is only ever used by name; this one serves its models

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.calls = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if not last.strip():
            raise ProviderError("bad_request", "example-echo: the request has no user message to echo",
                                provider=self.settings.name)
        self.calls += 1
        first = last.strip().splitlines()[0]
        text = f"echo {self.calls}: {first}"
        for word in text.split(" "):
            yield TextDelta(word + " ")
        words_in = sum(len(m.content.split()) for m in request.messages)
        yield Finished(Usage(words_in, len(text.split())), "end_turn")

    async def check(self) -> ProviderCheck:
        started = time.monotonic()
        return ProviderCheck(True, "example-echo answers offline (an echo, not a model)",
                             (time.monotonic() - started) * 1000)

    async def aclose(self) -> None:
        return None


def echo_provider(settings: ProviderSettings) -> EchoProvider:
    """The entry point: a factory from the provider's settings to a provider."""
    return EchoProvider(settings)
