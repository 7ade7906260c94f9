"""A scripted HTTP server on 127.0.0.1 for the connector HTTP layer's tests.

``server.script(path, Reply(...), Reply(...))`` queues answers for a path (the last one
repeats); ``server.seen[path]`` lists what arrived (method, headers, query, body);
``server.disconnects`` counts streams the client closed before their end.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    json: object = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    stream_chunks: tuple[bytes, ...] = ()  # streamed with a pause between chunks
    chunk_pause_s: float = 0.0


@dataclass
class Seen:
    method: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = defaultdict(list)
        self.seen: dict[str, list[Seen]] = defaultdict(list)
        self.disconnects = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.seen[path].append(Seen(request.method, dict(request.headers), dict(request.query), await request.read()))
        queue = self.scripts.get(path) or [Reply(404, json={"message": "no script"})]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.stream_chunks:
            resp = web.StreamResponse(status=reply.status, headers=reply.headers)
            resp.content_type = "text/event-stream"
            await resp.prepare(request)
            try:
                for chunk in reply.stream_chunks:
                    await resp.write(chunk)
                    await asyncio.sleep(reply.chunk_pause_s)
            except (ConnectionResetError, asyncio.CancelledError):
                self.disconnects += 1
                raise
            await resp.write_eof()
            return resp
        if reply.json is not None:
            return web.json_response(reply.json, status=reply.status, headers=reply.headers)
        return web.Response(status=reply.status, text=reply.text, headers=reply.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
