"""Building providers against the fakes, and consuming their streams."""

from __future__ import annotations

from typing import Any

from core.orchestration.contracts import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Finished,
    ProviderSettings,
    TextDelta,
)

OPENAI_KEY = "sk-test-openai-KEY123"
ANTHROPIC_KEY = "sk-ant-test-KEY456"
FAST_RETRIES = {"max_attempts": 3, "retry_base_s": 0.01}
# pyproject.toml's [project.entry-points."musubi.providers"], for tests that stand them in
ENTRY_POINTS = {
    "openai": "connectors.llm.openai:openai_provider",
    "azure-openai": "connectors.llm.openai:azure_openai_provider",
    "anthropic": "connectors.llm.anthropic:anthropic_provider",
    "openai-compatible": "connectors.llm.openai:openai_compatible_provider",
    "replay": "connectors.llm.replay:replay_provider",
}


def settings(name: str, kind: str, base_url: str | None, key: str | None = None, **extra: Any) -> ProviderSettings:
    api_version = extra.pop("api_version", None)
    return ProviderSettings(name, kind, base_url=base_url, api_key=key, api_version=api_version,
                            extra={**FAST_RETRIES, **extra})


def request(model: str = "gpt-test", text: str = "Say hi", *, timeout_s: float = 30.0,
            system: str | None = "Be brief.") -> ChatRequest:
    msgs = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", text),)
    return ChatRequest(model=model, messages=msgs, max_tokens=64, idempotency_key="run1:1:a:0", timeout_s=timeout_s,
                       temperature=0.2)


async def collect(provider: ChatProvider, req: ChatRequest) -> tuple[str, Finished]:
    texts: list[str] = []
    finished: Finished | None = None
    async for event in provider.stream(req):
        if isinstance(event, TextDelta):
            texts.append(event.text)
        else:
            assert finished is None, "exactly one Finished"
            finished = event
    assert finished is not None
    return "".join(texts), finished
