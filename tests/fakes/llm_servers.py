"""Fake OpenAI-compatible and Anthropic servers on 127.0.0.1 that stream like the real APIs.

Shapes follow /work/shared/api-notes/llm-providers.md: OpenAI ``chat.completion.chunk``
``data:`` lines with ``usage: null`` until the final ``choices: []`` usage chunk (sent when
``stream_options.include_usage`` asks) and ``data: [DONE]``; Azure's deployment routes with
``api-key`` and ``api-version``; Anthropic's named events (``message_start`` with the input
usage, ``content_block_delta``, ``ping``, ``message_delta`` with the cumulative output usage,
``message_stop``).  Error bodies are each vendor's own.

Each server runs its own event loop in a thread, so sync tests (the CLI, a real engine in a
subprocess) and async tests use it alike.  The control API::

    fake.push(Reply(text="Hi", input_tokens=9))       # queue replies (else the default reply)
    fake.push(Reply(status=429, retry_after="2"))     # faults: 429/500/401, slow, drop, malformed
    fake.responder = lambda seen: Reply(text=seen.body["model"])  # or choose per request
    fake.requests, fake.usage_reported, fake.disconnects, fake.completed
    fake.push(Reply(hold=True)); fake.wait_for(lambda f: f.chat_requests(), "the call"); fake.release()
    fake.wait_for(lambda f: f.completed == 1, "the stream's end")  # conditions, never sleeps

and the same over HTTP for a fake run from another process: ``POST /__fake__/replies``
(a JSON list of Reply fields) and ``GET /__fake__/stats``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import pytest
from aiohttp import web

Flavour = Literal["openai", "anthropic"]


@dataclass
class Reply:
    """One scripted answer.  Defaults: a 200 stream of ``text`` with the usage below."""

    text: str = "Hello from the fake."
    input_tokens: int = 9
    output_tokens: int | None = None  # None: one per streamed chunk
    status: int = 200  # non-200: the vendor's error body for that status
    retry_after: str | None = None  # a Retry-After header (seconds or an HTTP-date)
    error_message: str | None = None  # overrides the vendor's default error text
    error_code: str | None = None  # overrides OpenAI's error.code (e.g. "insufficient_quota")
    delay_s: float = 0.0  # before the answer's headers (a slow server)
    chunk_delay_s: float = 0.0  # between streamed chunks
    drop_after: int | None = None  # send this many text chunks, then cut the connection
    malformed_after: int | None = None  # send this many text chunks, then an unreadable chunk
    error_after: int | None = None  # send this many text chunks, then a mid-stream error event
    stop_reason: str | None = None  # default: "stop" (OpenAI) / "end_turn" (Anthropic)
    cache_read_tokens: int = 0  # Anthropic cache_read_input_tokens (OpenAI: cached_tokens, included)
    omit_usage: bool = False  # a server that ignores stream_options.include_usage
    hold: bool = False  # answer only after ``release()``: a call kept in flight for as long as a test needs


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLLMServer:
    """One fake vendor.  ``base_url`` is what a provider is configured with."""

    flavour: Flavour
    api_key: str | None = None  # when set, other keys get the vendor's 401
    default: Reply = field(default_factory=Reply)
    requests: list[Seen] = field(default_factory=list)
    usage_reported: list[tuple[int, int]] = field(default_factory=list)  # (input, output) per finished stream
    completed: int = 0
    disconnects: int = 0  # streams the client closed before their end
    port: int = 0
    # Chooses the reply per request when set (by model, by prompt, ...); else the queue, else ``default``.
    responder: Callable[[Seen], Reply | None] | None = None

    def __post_init__(self) -> None:
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.disconnected = threading.Event()
        self._changed = threading.Condition()  # notified on each request, completion and disconnect
        self._released: asyncio.Event | None = None  # created on the server's loop (``hold`` replies wait on it)

    # -- control ----------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base (``.../v1``) or Anthropic's (no ``/v1``)."""
        return f"{self.root}/v1" if self.flavour == "openai" else self.root

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.usage_reported.clear()
            self.completed = self.disconnects = 0
            self.disconnected.clear()
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.clear)

    def release(self) -> None:
        """Let every ``hold`` reply (waiting or still to come) answer."""
        assert self._loop is not None and self._released is not None, "the fake is not started"
        self._loop.call_soon_threadsafe(self._released.set)

    def wait_for(self, cond: Callable[[FakeLLMServer], object], what: str, timeout: float = 60.0) -> None:
        """Block until ``cond(self)`` holds, re-checked whenever the fake sees a request, a completion or a
        disconnect; fail naming ``what`` after ``timeout`` (a hang guard: a loaded machine is slow, not wrong)."""
        with self._changed:
            if not self._changed.wait_for(lambda: cond(self), timeout):
                raise AssertionError(f"the fake {self.flavour} server never saw: {what}")

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def chat_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST" and not r.path.startswith("/__fake__")]

    def _next(self, seen: Seen) -> Reply:
        if self.responder is not None:
            chosen = self.responder(seen)
            if chosen is not None:
                return chosen
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.flavour}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake LLM server did not start")
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/__fake__/replies", self._control_replies)
        app.router.add_get("/__fake__/stats", self._control_stats)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        self._released = asyncio.Event()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # -- HTTP control -----------------------------------------------------------------------

    async def _control_replies(self, request: web.Request) -> web.Response:
        known = {f.name for f in fields(Reply)}
        replies = [Reply(**{k: v for k, v in raw.items() if k in known}) for raw in await request.json()]
        self.push(*replies)
        return web.json_response({"queued": len(replies)})

    async def _control_stats(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "requests": len(self.chat_requests()), "completed": self.completed, "disconnects": self.disconnects,
            "usage_reported": self.usage_reported, "queued": [asdict(r) for r in self._queue],
        })

    # -- the vendor -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        self.requests.append(seen)
        self._notify()
        rid = f"req_{uuid.uuid4().hex[:16]}"
        id_header = {"openai": "x-request-id", "anthropic": "request-id"}[self.flavour]
        if request.path.startswith("/openai/") and "api-version" not in request.query:
            return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
        if not self._authorised(request):
            return self._error(401, Reply(status=401), rid, id_header, request)
        if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
            return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]},
                                     headers={id_header: rid})
        reply = self._next(seen)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.hold and self._released is not None:
            await self._released.wait()
        if reply.status != 200:
            return self._error(reply.status, reply, rid, id_header, request)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", id_header: rid,
                                           "Cache-Control": "no-cache"})
        await resp.prepare(request)
        events = self._openai_events(body, reply) if self.flavour == "openai" else self._anthropic_events(body, reply)
        try:
            for kind, payload in events:
                if kind == "drop":
                    assert request.transport is not None
                    request.transport.abort()  # cut mid-stream, as a dropped link does
                    return resp
                await resp.write(payload)
                if reply.chunk_delay_s and kind == "text":
                    await asyncio.sleep(reply.chunk_delay_s)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            self.disconnected.set()
            self._notify()
            raise
        self.completed += 1
        self._notify()
        return resp

    def _authorised(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        if self.flavour == "anthropic":
            return request.headers.get("x-api-key") == self.api_key
        if request.path.startswith("/openai/"):
            return request.headers.get("api-key") == self.api_key
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    def _error(self, status: int, reply: Reply, rid: str, id_header: str, request: web.Request) -> web.Response:
        headers = {id_header: rid}
        if reply.retry_after is not None:
            headers["Retry-After"] = reply.retry_after
        if self.flavour == "anthropic":
            kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
            texts = {401: "invalid x-api-key", 529: "Overloaded",
                     429: "Number of request tokens has exceeded your per-minute rate limit"}
            text = reply.error_message or texts.get(status, "Internal server error")
            return web.json_response({"type": "error", "error": {"type": kind, "message": text}, "request_id": rid},
                                     status=status, headers=headers)
        if request.path.startswith("/openai/") and status == 429:  # Azure's own 429 body
            text = reply.error_message or ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                                           "version 2024-10-21 have exceeded token rate limit of your current OpenAI "
                                           "S0 pricing tier. Please retry after 6 seconds.")
            return web.json_response({"error": {"code": "429", "message": text}}, status=status, headers=headers)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key", "")
        body = {
            401: ("invalid_request_error", "invalid_api_key",
                  f"Incorrect API key provided: {key}. You can find your API key at "
                  "https://platform.openai.com/account/api-keys."),
            429: ("tokens", "rate_limit_exceeded", "Rate limit reached for gpt-4o in organization org-fake on tokens "
                  "per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms."),
            500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
        }.get(status, ("invalid_request_error", None, "Bad request"))
        kind, code, text = body
        return web.json_response({"error": {"message": reply.error_message or text, "type": kind, "param": None,
                                            "code": reply.error_code or code}}, status=status, headers=headers)

    @staticmethod
    def _pieces(text: str) -> list[str]:
        words = text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] if text else []

    def _openai_events(self, body: Any, reply: Reply) -> Iterator[tuple[str, bytes]]:
        model = (body or {}).get("model", "deployment")
        base = {"id": "chatcmpl-fake1", "object": "chat.completion.chunk", "created": 1726012687, "model": model,
                "system_fingerprint": None}

        def chunk(choices: list[Any], usage: Any = None) -> bytes:
            return f"data: {json.dumps({**base, 'choices': choices, 'usage': usage})}\n\n".encode()

        pieces = self._pieces(reply.text)
        yield "meta", chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                              "finish_reason": None}])
        for i, piece in enumerate(pieces):
            if reply.drop_after is not None and i == reply.drop_after:
                yield "drop", b""
            if reply.malformed_after is not None and i == reply.malformed_after:
                yield "bad", b'data: {"id": "chatcmpl-fake1", "choices": [{"delta": {"content": "unterminated\n\n'
            if reply.error_after is not None and i == reply.error_after:
                yield "error", f"data: {json.dumps({'error': {'message': 'The server had an error while processing your request.', 'type': 'server_error'}})}\n\n".encode()  # noqa: E501
                return
            yield "text", chunk([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
        yield "meta", chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reply.stop_reason or "stop"}])
        out = reply.output_tokens if reply.output_tokens is not None else len(pieces)
        if ((body or {}).get("stream_options") or {}).get("include_usage") and not reply.omit_usage:
            usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": out,
                     "total_tokens": reply.input_tokens + out,
                     "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                     "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                   "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
            self.usage_reported.append((reply.input_tokens, out))
            yield "meta", chunk([], usage)
        yield "meta", b"data: [DONE]\n\n"

    def _anthropic_events(self, body: Any, reply: Reply) -> Iterator[tuple[str, bytes]]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        pieces = self._pieces(reply.text)
        model = (body or {}).get("model", "claude")
        yield "meta", event("message_start", {"message": {
            "id": "msg_01fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": reply.cache_read_tokens}}})
        yield "meta", event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        yield "meta", event("ping", {})
        for i, piece in enumerate(pieces):
            if reply.drop_after is not None and i == reply.drop_after:
                yield "drop", b""
            if reply.malformed_after is not None and i == reply.malformed_after:
                yield "bad", b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {\n\n'
            if reply.error_after is not None and i == reply.error_after:
                yield "error", event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            yield "text", event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        yield "meta", event("content_block_stop", {"index": 0})
        out = reply.output_tokens if reply.output_tokens is not None else len(pieces)
        yield "meta", event("message_delta", {"delta": {"stop_reason": reply.stop_reason or "end_turn",
                                                        "stop_sequence": None}, "usage": {"output_tokens": out}})
        self.usage_reported.append((reply.input_tokens + reply.cache_read_tokens, out))
        yield "meta", event("message_stop", {})


def _serve(flavour: Flavour, key: str) -> Iterator[FakeLLMServer]:
    server = FakeLLMServer(flavour, api_key=key).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_openai() -> Iterator[FakeLLMServer]:
    """A fake OpenAI-compatible server (also Azure's deployment routes) expecting key ``sk-test-openai-KEY123``."""
    yield from _serve("openai", "sk-test-openai-KEY123")


@pytest.fixture
def fake_anthropic() -> Iterator[FakeLLMServer]:
    """A fake Anthropic messages server expecting key ``sk-ant-test-KEY456``."""
    yield from _serve("anthropic", "sk-ant-test-KEY456")
