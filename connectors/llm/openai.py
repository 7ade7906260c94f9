"""OpenAI chat completions, Azure OpenAI, and any OpenAI-compatible server (Ollama, vLLM, LM Studio).

One wire format (``POST .../chat/completions`` streamed as ``data:`` chunks ending in
``data: [DONE]``), three ways to address and authenticate it:

* ``openai``: ``{base}/chat/completions``, ``Authorization: Bearer``; default base
  ``https://api.openai.com/v1``; ``max_completion_tokens``.
* ``azure-openai``: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V``
  with an ``api-key`` header (or an Entra ID bearer token, :mod:`connectors.llm.entra`); the
  request's model is the deployment name.
* ``openai-compatible``: ``{base}/chat/completions`` with an optional bearer key and
  ``max_tokens`` (Ollama drops ``max_completion_tokens`` silently).

Usage comes from the final chunk that ``stream_options: {include_usage: true}`` asks for
(``choices: []``, ``usage`` totals); ``prompt_tokens`` already includes cached tokens.
"""

from __future__ import annotations

from typing import Any

from connectors.llm.base import HttpChatProvider, StreamState
from connectors.llm.sse import SseEvent
from core.orchestration.contracts import ChatRequest, ProviderSettings

OPENAI_BASE = "https://api.openai.com/v1"


class OpenAIProvider(HttpChatProvider):
    """OpenAI's own API."""

    kind = "openai"
    max_tokens_field = "max_completion_tokens"

    def base_url(self) -> str:
        return (self.settings.base_url or OPENAI_BASE).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}
        for key, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
            if self.settings.extra.get(key):
                headers[header] = str(self.settings.extra[key])
        return headers

    def path(self, request: ChatRequest) -> str:
        return "chat/completions"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self.max_tokens_field: request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def on_event(self, event: SseEvent, state: StreamState) -> list[str]:
        if event.data.strip().startswith("[DONE]"):
            state.done = True
            return []
        chunk = self.decode(event, state)
        if chunk.get("error"):
            raise self.event_error(chunk["error"], state)
        texts: list[str] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                texts.append(content)
            if choice.get("finish_reason"):
                state.stop_reason = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            try:
                state.input_tokens = int(usage.get("prompt_tokens") or 0)
                state.output_tokens = int(usage["completion_tokens"])
            except (KeyError, TypeError, ValueError):
                raise self._fail("malformed", f"usage without token counts: {usage!r}", state,
                                 state.request_id) from None
        return texts

    def finetune_client(self) -> Any:
        """The files and fine-tuning API of this provider (connectors/llm/finetune.py; issue 19)."""
        from connectors.llm.finetune import FineTuneClient

        return FineTuneClient(self)


class OpenAICompatibleProvider(OpenAIProvider):
    """Any server speaking OpenAI's chat completions: Ollama (``/v1``), vLLM, LM Studio."""

    kind = "openai-compatible"
    max_tokens_field = "max_tokens"

    def base_url(self) -> str:
        if not self.settings.base_url:
            raise ValueError(f"provider {self.settings.name}: an openai-compatible provider needs base_url")
        return self.settings.base_url.rstrip("/")


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: deployment URLs, ``api-version``, ``api-key`` or an Entra ID token."""

    kind = "azure-openai"

    def __init__(self, settings: ProviderSettings, **kw: Any) -> None:
        self.token_provider = kw.pop("token_provider", None)
        if self.token_provider is None and settings.extra.get("auth") == "entra":
            # msal is imported only when Entra ID is configured
            from connectors.llm.entra import EntraTokenProvider

            self.token_provider = EntraTokenProvider.from_settings(settings)
        super().__init__(settings, **kw)
        if self.token_provider is not None:
            self.http.redactor.add(getattr(self.token_provider, "secret", None))

    def base_url(self) -> str:
        if not self.settings.base_url:
            raise ValueError(f"provider {self.settings.name}: azure-openai needs base_url (AZURE_OPENAI_ENDPOINT)")
        return self.settings.base_url.rstrip("/") + "/openai"

    def auth_headers(self) -> dict[str, str]:
        if self.settings.extra.get("auth") == "entra":
            return {}  # api_key holds the Entra client secret then: never sent to Azure OpenAI
        return {"api-key": self.settings.api_key} if self.settings.api_key else {}

    async def request_headers(self) -> dict[str, str]:
        if self.token_provider is None:
            return {}
        token = await self.token_provider()
        self.http.redactor.add(token)
        return {"Authorization": f"Bearer {token}"}

    def path(self, request: ChatRequest) -> str:
        return f"deployments/{request.model}/chat/completions?api-version={self.api_version()}"

    def api_version(self) -> str:
        return self.settings.api_version or "2024-10-21"

    def models_path(self) -> str:
        return f"models?api-version={self.api_version()}"

    def body(self, request: ChatRequest) -> dict[str, Any]:
        body = super().body(request)
        body.pop("model")  # the deployment in the URL names the model
        return body


def openai_provider(settings: ProviderSettings) -> OpenAIProvider:
    """Entry point ``openai``."""
    return OpenAIProvider(settings)


def azure_openai_provider(settings: ProviderSettings) -> AzureOpenAIProvider:
    """Entry point ``azure-openai``."""
    return AzureOpenAIProvider(settings)


def openai_compatible_provider(settings: ProviderSettings) -> OpenAICompatibleProvider:
    """Entry point ``openai-compatible`` (Ollama, vLLM, LM Studio, ...)."""
    return OpenAICompatibleProvider(settings)
