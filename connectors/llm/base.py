"""What every HTTP chat provider shares: its pooled client, error mapping, the stream loop.

A subclass says how to build the request (URL, headers, body) and how to turn one SSE
event into :class:`TextDelta`s, usage and a stop reason (:meth:`HttpChatProvider.on_event`).
Retries happen in :class:`connectors.http.HttpClient` and only until a 2xx's headers arrive,
so before any answer byte; a failure after output was streamed raises
``ProviderError(answered=True)`` and the run service decides (a new attempt).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.http import HttpClient, HttpError, RetryPolicy
from connectors.llm.sse import SseEvent, sse_events
from core.orchestration.contracts import (
    ChatMessage,
    ChatRequest,
    Finished,
    ProviderCheck,
    ProviderError,
    ProviderErrorKind,
    ProviderSettings,
    StreamEvent,
    TextDelta,
    Usage,
)

log = logging.getLogger("musubi.providers")

_KINDS: dict[str, ProviderErrorKind] = {
    "auth": "auth", "rate_limited": "rate_limited", "upstream": "upstream", "timeout": "timeout",
    "connection": "connection", "validation": "bad_request", "not_found": "bad_request",
}
# OpenAI's 429 that waiting does not cure (billing), and Anthropic's monthly spend limit.
_NOT_TRANSIENT = frozenset({"insufficient_quota", "enforced_spend_limit_reached"})


def _give_up(err: HttpError) -> bool:
    return err.vendor_code in _NOT_TRANSIENT


@dataclass
class StreamState:
    """What one streamed answer has said so far."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    done: bool = False  # the vendor's end marker arrived ([DONE], message_stop)
    answered: bool = False  # at least one answer byte was handed on
    request_id: str | None = None


# Connections open at once to one provider (config ``pool_size``).  aiohttp's default of 100 and
# not the HTTP layer's 20: a run holds its connection for the whole streamed answer, and the
# engine runs up to 64 runs at once (RUN_SLOTS), some fanning out, so 20 queued calls inside the
# client (a 200 ms provider answered in ~490 ms at 50 concurrent runs).
DEFAULT_POOL_SIZE = 100


class HttpChatProvider:
    """Base of the HTTP providers.  Subclasses set ``kind`` and implement the request and events."""

    kind = "base"
    is_replay = False
    default_timeout_s = 120.0

    def __init__(self, settings: ProviderSettings, *, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        opts = dict(settings.extra)
        self.policy = policy or RetryPolicy(
            max_attempts=int(opts.get("max_attempts", 3)), base_s=float(opts.get("retry_base_s", 0.5)),
            max_delay_s=float(opts.get("max_retry_delay_s", 60.0)),
            max_total_wait_s=float(opts.get("max_retry_wait_s", 120.0)), give_up=_give_up,
        )
        self.http = HttpClient(
            settings.name, self.base_url(), headers=self.auth_headers(), secrets=[settings.api_key],
            timeout_s=float(opts.get("timeout_s", self.default_timeout_s)), policy=self.policy,
            pool_size=int(opts.get("pool_size", DEFAULT_POOL_SIZE)),
        )

    def __repr__(self) -> str:
        shown = self.http.redactor.url(self.base_url())
        return f"{type(self).__name__}(name={self.settings.name!r}, base_url={shown!r})"

    # -- for subclasses ---------------------------------------------------------------------

    def base_url(self) -> str:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        return {}

    def path(self, request: ChatRequest) -> str:
        raise NotImplementedError

    def body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def request_headers(self) -> dict[str, str]:
        """Per-call headers (an Entra token that may have been refreshed)."""
        return {}

    def on_event(self, event: SseEvent, state: StreamState) -> list[str]:
        """Update ``state`` from one event; return the answer texts it carried.

        Raises :class:`ProviderError` for a vendor error event sent after HTTP 200."""
        raise NotImplementedError

    def call_timeout(self, request: ChatRequest) -> float:
        """The request's own timeout, capped by the provider's ``timeout_s`` when one is configured."""
        cap = self.settings.extra.get("timeout_s")
        return min(request.timeout_s, float(cap)) if cap else request.timeout_s

    def check_model(self) -> str | None:
        value = self.settings.extra.get("check_model")
        return str(value) if value else None

    # -- the stream -------------------------------------------------------------------------

    def _error(self, err: HttpError, answered: bool) -> ProviderError:
        return ProviderError(
            _KINDS.get(err.kind, "upstream"), err.message, provider=self.settings.name, status=err.status,
            retry_after_s=err.retry_after_s, request_id=err.request_id, answered=answered,
        )

    def _fail(self, kind: ProviderErrorKind, what: str, state: StreamState, request_id: str | None) -> ProviderError:
        name = self.settings.name
        return ProviderError(kind, f"{name}: {self.http.redactor.text(what)}", provider=name, request_id=request_id,
                             answered=state.answered)

    def decode(self, event: SseEvent, state: StreamState) -> Mapping[str, Any]:
        """One event's JSON object; anything else is a ``malformed`` ProviderError."""
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._fail("malformed", f"an unreadable stream chunk: {event.data[:120]!r}", state, state.request_id)
        return data

    def event_error(self, error: Any, state: StreamState) -> ProviderError:
        """A vendor error object sent inside a 200 stream (OpenAI ``error``, Anthropic ``error`` event)."""
        err = error if isinstance(error, dict) else {"message": str(error)}
        code = str(err.get("type") or err.get("code") or "")
        kind: ProviderErrorKind = "rate_limited" if "rate_limit" in code else "upstream"
        text = str(err.get("message") or code or "an error")
        return self._fail(kind, f"the vendor reported mid-stream: {text}", state, state.request_id)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one turn (see :class:`core.orchestration.contracts.ChatProvider`)."""
        state = StreamState()
        request_id: str | None = None
        started = time.monotonic()
        try:
            async with self.http.stream(
                "POST", self.path(request), json=self.body(request), headers=await self.request_headers(),
                idempotent=True,  # nothing was answered yet: the vendors' SDKs retry these too
                timeout_s=self.call_timeout(request),
            ) as resp:
                request_id = state.request_id = self.http.request_id_of(resp.headers)
                async for event in sse_events(resp.content):
                    for text in self.on_event(event, state):
                        if text:
                            state.answered = True
                            yield TextDelta(text)
                    if state.done:
                        break
        except HttpError as err:
            raise self._error(err, state.answered) from None
        except TimeoutError:
            raise self._fail("timeout", f"no complete answer within {self.call_timeout(request):g}s", state,
                             request_id) from None
        except (aiohttp.ClientError, UnicodeDecodeError) as exc:
            raise self._fail("connection", f"the stream broke off ({type(exc).__name__})", state,
                             request_id) from None
        if not state.done:
            raise self._fail("connection", "the stream ended before the vendor's end marker", state, request_id)
        if state.input_tokens is None or state.output_tokens is None:
            raise self._fail("malformed", "the stream carried no usage (the tokens to charge); "
                             "a server that cannot report usage cannot be used for runs", state, request_id)
        log.debug("%s: %s answered in %.0f ms (request id %s, key %s)", self.settings.name, request.model,
                  (time.monotonic() - started) * 1000, request_id, request.idempotency_key)
        yield Finished(Usage(state.input_tokens, state.output_tokens), state.stop_reason or "stop", request_id)

    # -- check and close --------------------------------------------------------------------

    async def check(self) -> ProviderCheck:
        """One tiny chat call (1 output token) to the check model, else a model listing."""
        started = time.monotonic()
        model = self.check_model()
        try:
            if model is None:
                answer = await self.http.request("GET", self.models_path(), headers=await self.request_headers(),
                                                 timeout_s=30.0)
                detail = f"the key works ({self.models_path()} answered {answer.status})"
            else:
                probe = ChatRequest(model=model, messages=(ChatMessage("user", "Say OK."),), max_tokens=1,
                                    idempotency_key="check", timeout_s=30.0)
                usage = None
                async for ev in self.stream(probe):
                    if isinstance(ev, Finished):
                        usage = ev.usage
                counts = f" ({usage.input_tokens} in, {usage.output_tokens} out)" if usage else ""
                detail = f"{model} answered{counts}"
        except (ProviderError, HttpError) as err:
            return ProviderCheck(False, self.http.redactor.text(err), (time.monotonic() - started) * 1000)
        return ProviderCheck(True, detail, (time.monotonic() - started) * 1000)

    def models_path(self) -> str:
        return "models"

    async def aclose(self) -> None:
        await self.http.aclose()
