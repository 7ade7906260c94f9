"""Shared plumbing of the vendor fakes: an aiohttp app on 127.0.0.1 with fault injection.

Each fake (``jira.py``, ``github.py``, ...) builds its routes on :class:`FakeServer`.  Tests
inject faults before a call: ``fake.fail(status, headers=..., body=..., times=n, path=...)``
answers the next ``n`` matching requests with that response instead of the real route (a 429
with or without ``Retry-After``, a 503, an HTML page); ``delay`` makes a route slow, to
exercise timeouts.  Every request is recorded in ``fake.requests`` (method, path, query,
headers, body) so tests can check what the connector sent, and that no secret leaked into a
place it should not be.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes = b""
    times: int = 1
    path: str | None = None  # a substring of the request path; None matches every request
    method: str | None = None
    delay: float = 0.0
    content_type: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw: str = ""  # the path as sent, %-escapes kept

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeServer:
    """An aiohttp app on 127.0.0.1 (a free port), started with ``await fake.start()``."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware], client_max_size=4 << 20)
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.delay = 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def fail(self, status: int, *, headers: dict[str, str] | None = None, body: str | bytes | dict[str, Any] = b"",
             times: int = 1, path: str | None = None, method: str | None = None, delay: float = 0.0,
             content_type: str | None = None) -> None:
        """Answer the next ``times`` matching requests with this response."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        ctype = content_type or ("application/json" if isinstance(body, dict) else None)
        self.faults.append(Fault(status, headers or {}, raw, times, path, method, delay, ctype))

    def count(self, method: str, fragment: str) -> int:
        """How many requests of ``method`` had ``fragment`` in their path."""
        return sum(1 for r in self.requests if r.method == method and fragment in r.path)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body,
                                  request.raw_path))
        for f in self.faults:
            if (f.path is None or f.path in request.path) and (f.method is None or f.method == request.method):
                f.times -= 1
                if f.times <= 0:
                    self.faults.remove(f)
                if f.delay:
                    await asyncio.sleep(f.delay)
                resp = web.Response(status=f.status, body=f.body, headers=f.headers)
                if f.content_type:
                    resp.content_type = f.content_type
                return resp
        if self.delay:
            await asyncio.sleep(self.delay)
        return await handler(request)


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) of a Basic Authorization header, else None."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        user, _, pw = base64.b64decode(auth[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, pw


def bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


def json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
