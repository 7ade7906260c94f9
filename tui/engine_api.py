"""The engine API screens call: the real one over the socket, and the base a test fake implements.

Screens reach it as ``ctx.api`` (see :mod:`tui.context`) inside workers.  Request
building, the verbs and answer decoding are :mod:`core.wire`'s, shared with the CLI's
client; this module adds what the app needs on top (counting writes in flight, the
connection's start and probe, the event stream).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, cast

from core.errors import EngineUnavailable
from core.paths import HomePaths
from core.wire import Identity, Verbs

if TYPE_CHECKING:  # typing only: the TUI's first frame does not need the response shapes
    from core.api.responses import IndexStatus, JobRow, SearchAnswer


class EngineApi(Verbs[Coroutine[Any, Any, Any]]):
    """What the app needs from the engine.  Subclasses implement the four primitives
    (``start``, ``probe``, ``_request``, ``events``); the verbs come from :class:`core.wire.Verbs`."""

    paths: HomePaths
    identity: Identity

    def __init__(self) -> None:
        self.writes_in_flight = 0

    @property
    def tenant(self) -> str | None:
        """The tenant asked for (the engine's answer is in ``whoami``)."""
        return self.identity.tenant

    @property
    def as_user(self) -> str | None:
        return self.identity.as_user

    def set_tenant(self, name: str) -> None:
        self.identity.tenant = name

    async def start(self) -> dict[str, Any]:
        """Make sure an engine runs (starting one when none answers); return its health."""
        raise NotImplementedError

    async def probe(self) -> dict[str, Any]:
        """Health of a running engine; raise :class:`EngineUnavailable` instead of starting one."""
        raise NotImplementedError

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None
    ) -> Any:
        raise NotImplementedError

    def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        """Live events of the current tenant until the stream ends (raises EngineUnavailable)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """One call; writes are counted so quitting can warn while one is on its way."""
        write = method != "GET"
        if write:
            self.writes_in_flight += 1
        try:
            return await self._request(method, path, body, query)
        finally:
            if write:
                self.writes_in_flight -= 1

    # -- code search (issue 11): the routes the Search screen uses ------------------------------

    async def index_status(self) -> IndexStatus:
        """``GET /v1/index/status``: the code index of the current project (``project`` None: none here)."""
        return cast("IndexStatus", await self.get("/v1/index/status"))

    async def search(
        self, query: str, *, k: int = 10, path: str | None = None, lang: str | None = None
    ) -> SearchAnswer:
        """``POST /v1/search``: the best ``k`` chunks for ``query``, optionally within a path glob and language."""
        body: dict[str, Any] = {"query": query, "k": k, "path": path or None, "lang": lang or None}
        return cast("SearchAnswer", await self.post("/v1/search", body))

    async def start_index(self, path: str | None = None, *, force: bool = False) -> JobRow:
        """``POST /v1/index``: queue a (re)index of the current project; the job, followed by its events."""
        answer = await self.post("/v1/index", {"path": path, "force": force})
        return cast("JobRow", answer["job"])

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


class RealEngineApi(EngineApi):
    """The engine over its Unix socket (``core.client.AsyncEngineClient``).

    ``core.client`` (http.client, json, subprocess) and aiohttp are imported on first
    use, inside the connection worker: none of it is needed to paint the first frame.
    """

    def __init__(
        self,
        paths: HomePaths,
        tenant: str | None = None,
        as_user: str | None = None,
        cwd: str | None = None,
    ) -> None:
        super().__init__()
        self.paths = paths
        self._who = (tenant, as_user, cwd)
        self._identity: Identity | None = None
        self._client: Any = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            tenant, as_user, cwd = self._who
            self._identity = Identity(tenant=tenant, as_user=as_user, cwd=cwd)
        return self._identity

    @identity.setter
    def identity(self, value: Identity) -> None:
        self._identity = value

    @property
    def tenant(self) -> str | None:
        return self._identity.tenant if self._identity else self._who[0]

    @property
    def as_user(self) -> str | None:
        return self._who[1]

    def set_tenant(self, name: str) -> None:
        self._who = (name, *self._who[1:])
        if self._identity is not None:
            self._identity.tenant = name

    @property
    def client(self) -> Any:
        if self._client is None:
            from core.client import AsyncEngineClient

            self._client = AsyncEngineClient(self.paths, self.identity)
        return self._client

    async def _warm(self) -> None:
        # aiohttp (~250 ms) and core.client load in a thread, so the UI keeps painting.
        await asyncio.to_thread(importlib.import_module, "aiohttp")
        await asyncio.to_thread(lambda: self.client)

    async def start(self) -> dict[str, Any]:
        await self._warm()
        return dict(await self.client.ensure_engine())

    async def probe(self) -> dict[str, Any]:
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

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None
    ) -> Any:
        try:
            return await self.client.request(method, path, body=body, query=query)
        except TimeoutError:
            raise EngineUnavailable(
                f"the engine did not answer {method} {path} within 60 s."
            ) from None

    def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        events: AsyncIterator[dict[str, Any]] = self.client.events(types)
        return events

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
