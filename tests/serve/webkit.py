"""A ``musubi serve web`` server in the test's loop against the real engine, and a browser stand-in."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.engine.helpers import Home
from tests.serve.sshkit import RecordingLink
from tui.serve.signin import COOKIE
from tui.serve.web import WebOptions, WebServer

TOKEN = "t0ken-" + "x" * 40


async def web_server(h: Home, **opts: Any) -> tuple[WebServer, RecordingLink]:
    o = WebOptions(**{"port": 0, "token": TOKEN, **opts})
    link = RecordingLink(h.paths, 3600, "web")
    srv = WebServer(h.paths, o, link)
    await srv.start()
    return srv, link


async def sign_in(http: aiohttp.ClientSession, srv: WebServer, token: str = TOKEN) -> tuple[int, str | None]:
    """POST the token form from the server's own origin: (status, the cookie value when one was set)."""
    async with http.post(f"{srv.public_url}/login", data={"token": token}, allow_redirects=False,
                         headers={"Origin": srv.origin}) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, morsel.value if morsel else None


async def read_until(ws: aiohttp.ClientWebSocketResponse, needle: bytes, timeout: float = 60) -> bytes:
    """Frames of the TUI until ``needle`` shows in them."""
    got = bytearray()

    async def loop() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                got.extend(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                got.extend(msg.data.encode())
            if needle in got:
                return
        raise AssertionError(f"websocket closed before {needle!r}: {bytes(got[-300:])!r}")

    await asyncio.wait_for(loop(), timeout)
    return bytes(got)
