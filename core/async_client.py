"""The asynchronous engine client: the TUI's engine API (typed calls, the event stream, start and probe).

:class:`AsyncEngineClient` sends the typed calls of :mod:`core.api.calls` with aiohttp over
the engine's Unix socket.  It is what the TUI's screens reach as ``ctx.api``; on top of the
requests it counts the writes in flight (quitting warns while one is on its way), starts or
probes the engine for the connection worker, follows ``/v1/events`` and exports the audit
log.  Importing it is cheap: aiohttp, ``http.client`` and the engine lifecycle (subprocess)
load on first use, in a thread, so none of it delays the TUI's first frame.

:class:`EngineApi` is the interface the TUI needs: this client and the TUI tests' fake
(tests/tui/fakes.py) both satisfy it, and mypy checks that they do.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

from core.api.calls import Call
from core.errors import EngineUnavailable
from core.paths import HomePaths
from core.wire import Identity, Verbs, decode, prepare, raise_for

T = TypeVar("T")
DEFAULT_EVENTS = "audit,quota.alert"
REQUEST_TIMEOUT_S = 60


class EngineApi(Protocol):
    """What the TUI needs from the engine; :class:`AsyncEngineClient` and the tests' fake implement it."""

    paths: HomePaths
    identity: Identity
    writes_in_flight: int

    async def call(self, c: Call[T]) -> T:
        """Send one typed call (:mod:`core.api.calls`); its answer or its typed error."""
        ...

    async def start(self) -> dict[str, Any]:
        """Make sure an engine runs (starting one when none answers); return its health."""
        ...

    async def probe(self) -> dict[str, Any]:
        """Health of a running engine; raise :class:`EngineUnavailable` instead of starting one."""
        ...

    def events(self, types: str = DEFAULT_EVENTS) -> AsyncIterator[dict[str, Any]]:
        """Live events of the current tenant until the stream ends (raises EngineUnavailable)."""
        ...

    async def export_audit(
        self, fmt: str, filters: dict[str, Any], output: str, *, force: bool = False
    ) -> dict[str, Any]:
        """Write the audit log to ``output`` (``musubi audit export``'s rules)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class AsyncEngineClient(Verbs[Any]):
    """aiohttp client: typed calls, the server-sent event stream, engine start and probe."""

    def __init__(self, paths: HomePaths | None = None, identity: Identity | None = None) -> None:
        self.paths = paths or HomePaths.resolve()
        self.identity = identity or Identity()
        self.writes_in_flight = 0
        self._session: Any = None

    async def _warm(self) -> None:
        # aiohttp takes ~250 ms to import: in a thread, so the UI keeps painting.
        await asyncio.to_thread(importlib.import_module, "aiohttp")

    async def _sess(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.paths.socket)),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self._session

    async def start(self) -> dict[str, Any]:
        """Start the engine when none answers (in a thread); return its health and whether we started it."""
        from core.lifecycle import start_engine

        await self._warm()
        return dict(await asyncio.to_thread(start_engine, self.paths))


    async def probe(self) -> dict[str, Any]:
        """Health of a running engine; raise :class:`EngineUnavailable` (saying how to start one) otherwise."""
        from core.lifecycle import engine_status, ping

        await self._warm()
        info = await asyncio.to_thread(ping, self.paths)
        if info:
            return info
        st = await asyncio.to_thread(engine_status, self.paths)
        stale = f" (stale {', '.join(st['stale'])} left behind)" if st.get("stale") else ""
        raise EngineUnavailable(
            f"the engine is not running{stale}; press ctrl+r to start it, or run: musubi engine start"
        )

    async def call(self, c: Call[T]) -> T:
        """Send one typed call (:mod:`core.api.calls`); return its answer or raise its typed error."""
        answer: T = await self.request(c.method, c.path, c.body, c.query)
        return answer

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        """Send one request; return the decoded JSON answer or raise its typed error.

        Writes are counted while they run, so quitting can warn about one on its way.
        """
        write = method != "GET"
        if write:
            self.writes_in_flight += 1
        try:
            return await self._send(method, path, body, query)
        finally:
            if write:
                self.writes_in_flight -= 1

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None
    ) -> Any:
        import aiohttp

        req = prepare(method, path, self.identity, body, query)
        s = await self._sess()
        try:
            async with s.request(
                req.method, "http://musubi" + req.target, data=req.body, headers=req.headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as resp:
                return decode(resp.status, await resp.read())
        except TimeoutError:
            raise EngineUnavailable(
                f"the engine did not answer {method} {path} within {REQUEST_TIMEOUT_S} s."
            ) from None
        except aiohttp.ClientError as exc:
            raise EngineUnavailable(f"engine not reachable: {exc}") from None

    async def events(self, types: str = DEFAULT_EVENTS) -> AsyncIterator[dict[str, Any]]:
        """Yield events from ``/v1/events`` until the connection ends (raises EngineUnavailable)."""
        import aiohttp

        s = await self._sess()
        try:
            async with s.get(
                "http://musubi/v1/events", params={"types": types}, headers=self.identity.headers(),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=45),
            ) as resp:
                if resp.status >= 400:
                    raise_for(resp.status, await resp.read())
                data_lines: list[str] = []
                async for raw in resp.content:
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("data: "):
                        data_lines.append(line[6:])
                    elif line == "" and data_lines:
                        yield json.loads("\n".join(data_lines))
                        data_lines = []
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineUnavailable(f"event stream lost: {exc}") from None

    async def export_audit(
        self, fmt: str, filters: dict[str, Any], output: str, *, force: bool = False
    ) -> dict[str, Any]:
        """Export the audit log to ``output``: the engine streams the events, this process writes
        the file, under the same rules as ``musubi audit export`` (``core.exports``)."""
        from core.client import EngineClient
        from core.exports import export_audit

        self.writes_in_flight += 1
        try:
            client = EngineClient(self.paths, self.identity, autostart=False)
            return await asyncio.to_thread(export_audit, client, fmt, filters, output, force=force)
        finally:
            self.writes_in_flight -= 1

    async def close(self) -> None:
        """Close the aiohttp session."""
        if self._session is not None:
            await self._session.close()
