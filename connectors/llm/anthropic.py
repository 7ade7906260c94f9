"""Anthropic messages: ``POST {base}/v1/messages`` streamed as named SSE events.

``message_start`` carries the input usage (and the cache counts, which Anthropic does not
include in ``input_tokens``: we report all input tokens together, so the charge covers
them), ``content_block_delta`` the text, ``message_delta`` the cumulative output usage and
the stop reason, ``message_stop`` the end; ``ping`` and unknown events are ignored, an
``error`` event after HTTP 200 (``overloaded_error``) is a ProviderError.
"""

from __future__ import annotations

from typing import Any

from connectors.llm.base import HttpChatProvider, StreamState
from connectors.llm.sse import SseEvent
from core.orchestration.contracts import ChatRequest, ProviderSettings

ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


def _input_total(usage: Any) -> int | None:
    if not isinstance(usage, dict) or usage.get("input_tokens") is None:
        return None
    return sum(int(usage.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                                 "cache_read_input_tokens"))


class AnthropicProvider(HttpChatProvider):
    kind = "anthropic"

    def base_url(self) -> str:
        base = (self.settings.base_url or ANTHROPIC_BASE).rstrip("/")
        return base[:-3] if base.endswith("/v1") else base  # the paths carry /v1 (a common slip)

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": str(self.settings.api_version or ANTHROPIC_VERSION)}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return headers

    def path(self, request: ChatRequest) -> str:
        return "v1/messages"

    def models_path(self) -> str:
        return "v1/models"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
            "stream": True,
        }
        if system:
            body["system"] = system  # top-level, not a message role
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def on_event(self, event: SseEvent, state: StreamState) -> list[str]:
        data = self.decode(event, state)
        kind = data.get("type") or event.event
        if kind == "message_start":
            message = data.get("message") or {}
            usage = message.get("usage") if isinstance(message, dict) else None
            state.input_tokens = _input_total(usage)
            if isinstance(usage, dict) and usage.get("output_tokens") is not None:
                state.output_tokens = int(usage["output_tokens"])
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                return [str(delta.get("text") or "")]
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                if usage.get("output_tokens") is not None:
                    state.output_tokens = int(usage["output_tokens"])  # cumulative: the last one wins
                total = _input_total(usage)
                if total is not None:
                    state.input_tokens = total
            delta = data.get("delta") or {}
            if isinstance(delta, dict) and delta.get("stop_reason"):
                state.stop_reason = str(delta["stop_reason"])
        elif kind == "message_stop":
            state.done = True
        elif kind == "error":
            raise self.event_error(data.get("error") or data, state)
        return []


def anthropic_provider(settings: ProviderSettings) -> AnthropicProvider:
    """Entry point ``anthropic``."""
    return AnthropicProvider(settings)
