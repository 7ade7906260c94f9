"""Services handed to screens: the engine API, the live connection, settings and the clock.

Screens never build clients themselves: they read :class:`AppContext` (``self.app.ctx``),
call ``ctx.api`` inside workers, and subscribe to the context's signals for
connection changes, refreshed data and live engine events.  Tests swap
:class:`EngineApi` for a fake that answers from fixed data, which keeps snapshots
deterministic, or use :class:`RealEngineApi` against a real engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.errors import EngineUnavailable, MusubiError, PermissionDenied
from core.paths import HomePaths
from tui.config import ColorDecision, Settings

if TYPE_CHECKING:
    from textual.app import App
    from textual.signal import Signal

    from core.client import Identity

ConnName = Literal["connecting", "connected", "reconnecting", "down"]

# Audit actions after which quota headroom may have changed.
QUOTA_ACTIONS = frozenset(
    {"usage.record", "usage.settle", "usage.reserve", "usage.release", "usage.expire", "quota.set", "quota.remove"}
)


def utcnow() -> datetime:
    """Aware UTC now; tests replace the context's clock to freeze time."""
    return datetime.now(UTC)


class EngineApi:
    """What the app needs from the engine.  Subclasses implement the four primitives."""

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

    async def _request(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        raise NotImplementedError

    def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        """Live events of the current tenant until the stream ends (raises EngineUnavailable)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
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

    async def export_audit(self, fmt: str, filters: dict[str, Any], output: str, *, force: bool = False) -> dict[str, Any]:
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

    async def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, query=query)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.request("POST", path, body=body or {})

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        return await self.request("PUT", path, body=body)

    async def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return await self.request("DELETE", path, query=query)


class RealEngineApi(EngineApi):
    """The engine over its Unix socket (``core.client.AsyncEngineClient``).

    ``core.client`` (http.client, json, subprocess) and aiohttp are imported on first
    use, inside the connection worker: none of it is needed to paint the first frame.
    """

    def __init__(self, paths: HomePaths, tenant: str | None = None, as_user: str | None = None, cwd: str | None = None) -> None:
        super().__init__()
        self.paths = paths
        self._who = (tenant, as_user, cwd)
        self._identity: Identity | None = None
        self._client: Any = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            from core.client import Identity

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
        from core.client import engine_status, ping

        await self._warm()
        info = await asyncio.to_thread(ping, self.paths)
        if info:
            return info
        st = await asyncio.to_thread(engine_status, self.paths)
        stale = f" (stale {', '.join(st['stale'])} left behind)" if st.get("stale") else ""
        raise EngineUnavailable(f"the engine is not running{stale}; press ctrl+r to start it, or run: musubi engine start")

    async def _request(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        try:
            return await self.client.request(method, path, body=body, query=query)
        except TimeoutError:
            raise EngineUnavailable(f"the engine did not answer {method} {path} within 60 s.") from None

    def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        events: AsyncIterator[dict[str, Any]] = self.client.events(types)
        return events

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


@dataclass
class ConnState:
    """The engine connection as the status bar shows it."""

    name: ConnName = "connecting"
    reason: str = ""
    attempt: int = 0
    retry_in: float | None = None

    @property
    def symbol(self) -> str:
        # State is never shown by colour alone: each has its own symbol and word.
        return {"connecting": "…", "connected": "●", "reconnecting": "↻", "down": "✗"}[self.name]


@dataclass
class AppContext:
    """Everything a screen needs, built once per app run."""

    api: EngineApi
    settings: Settings = field(default_factory=Settings)
    color: ColorDecision = field(default_factory=lambda: ColorDecision("truecolor", "default"))
    animations: bool = True
    clock: Callable[[], datetime] = utcnow
    config_file: Path | None = None
    conn: ConnState = field(default_factory=ConnState)
    health: dict[str, Any] | None = None
    whoami: dict[str, Any] | None = None
    quotas: dict[str, Any] | None = None
    quota_error: str | None = None

    def attach(self, app: App[Any]) -> None:
        """Create the signals, owned by ``app`` (Textual unsubscribes removed widgets itself)."""
        from textual.signal import Signal

        self.conn_changed: Signal[ConnState] = Signal(app, "conn-changed")
        self.data_changed: Signal[str] = Signal(app, "data-changed")
        self.engine_event: Signal[dict[str, Any]] = Signal(app, "engine-event")

    @property
    def tenant(self) -> str:
        if self.whoami:
            return str(self.whoami.get("tenant"))
        return self.api.tenant or "default"

    @property
    def user(self) -> str:
        if self.whoami:
            return str(self.whoami.get("user"))
        return self.api.as_user or "…"

    def can(self, permission: str) -> bool:
        """Whether the current user holds ``permission`` (the engine still checks every call)."""
        return bool(self.whoami) and permission in (self.whoami or {}).get("permissions", [])

    def set_conn(self, state: ConnState) -> None:
        self.conn = state
        self.conn_changed.publish(state)

    async def refresh_quotas(self) -> None:
        """Re-read ``/v1/quotas``; a user without ``quotas.read`` gets a reason instead."""
        try:
            self.quotas = await self.api.get("/v1/quotas")
            self.quota_error = None
        except PermissionDenied as exc:
            self.quotas, self.quota_error = None, exc.message
        self.data_changed.publish("quotas")

    async def refresh_identity(self) -> None:
        self.whoami = await self.api.get("/v1/whoami")
        self.data_changed.publish("whoami")


class EngineLink:
    """Keeps the app connected: start or find the engine, follow its event stream, reconnect with backoff.

    Runs as one app worker (group ``engine-link``); losing the engine never ends the app.
    The first attempt may start an engine; later ones only look for it, so an engine
    the user stopped on purpose stays stopped until they press ctrl+r.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._kick = asyncio.Event()
        self._start_next = True
        self._refresh_due = asyncio.Event()

    def reconnect_now(self) -> None:
        """Skip the backoff wait and (re)start the engine if needed."""
        self._start_next = True
        self._kick.set()

    async def run(self) -> None:
        ctx, conf = self.ctx, self.ctx.settings.engine
        delay, attempt, ever_connected = conf.retry_initial_s, 0, False
        while True:
            try:
                start, self._start_next = self._start_next, False
                ctx.health = await (ctx.api.start() if start else ctx.api.probe())
                await ctx.refresh_identity()
                await ctx.refresh_quotas()
                ctx.data_changed.publish("health")
                ctx.set_conn(ConnState("connected"))
                attempt, delay, ever_connected = 0, conf.retry_initial_s, True
                await self._follow()
                raise EngineUnavailable("the engine closed the event stream (it may have stopped)")
            except EngineUnavailable as exc:
                # Failing to start is "down"; failing to find a lost engine is "reconnecting".
                name: ConnName = "down" if start else "reconnecting"
                reason = exc.message
            except MusubiError as exc:
                # The engine answered but refused us (unknown tenant, impersonation denied, storage error).
                name, reason, delay = "down", exc.message, conf.retry_max_s
            attempt += 1
            # Until we have been connected once, keep trying to start the engine the user asked for.
            self._start_next = self._start_next or not ever_connected
            ctx.set_conn(ConnState(name, reason, attempt, delay))
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=delay)
            delay = min(delay * 2, conf.retry_max_s)

    async def _follow(self) -> None:
        """Forward events to the app and refresh quotas when they may have changed."""
        poller = asyncio.create_task(self._poll_quotas())
        try:
            async for ev in self.ctx.api.events():
                self.ctx.engine_event.publish(ev)
                action = (ev.get("event") or {}).get("action")
                if ev.get("type") == "quota.alert" or action in QUOTA_ACTIONS:
                    self._refresh_due.set()
                if action in ("member.add", "member.update", "member.remove") and ev.get("tenant") == self.ctx.tenant:
                    await self.ctx.refresh_identity()
        finally:
            poller.cancel()

    async def _poll_quotas(self) -> None:
        # The next refresh is scheduled only after the previous one finished, so a slow
        # link never piles up requests; events make it come sooner.
        while True:
            try:
                await asyncio.wait_for(self._refresh_due.wait(), timeout=self.ctx.settings.engine.poll_s)
                await asyncio.sleep(0.2)  # coalesce a burst of usage events into one read
            except TimeoutError:
                pass
            self._refresh_due.clear()
            try:
                await self.ctx.refresh_quotas()
            except MusubiError:
                return  # the event stream notices a lost engine and reconnects


def app_ctx(node: Any) -> AppContext:
    """The :class:`AppContext` of the app a widget or screen belongs to."""
    ctx = getattr(node.app, "ctx", None)
    if not isinstance(ctx, AppContext):
        raise RuntimeError("this widget runs outside MusubiApp: no AppContext")
    return ctx
