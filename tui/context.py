"""Services handed to screens: the live connection to the engine, settings and the clock.

Screens never build clients themselves: they read :class:`AppContext` (``self.app.ctx``),
send typed calls through ``ctx.api`` (an :class:`~core.async_client.EngineApi`:
``await ctx.api.call(calls.members())``) inside workers, and subscribe to the context's
signals for connection changes, refreshed data and live engine events.  :class:`EngineLink`
keeps the connection.  The app's engine API is :class:`~core.async_client.AsyncEngineClient`;
tests swap it for the fake of tests/tui/fakes.py, which answers from fixed data (snapshots
stay deterministic) in the engine's own shapes (tests/tui/test_api_contract.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.api import calls
from core.async_client import AsyncEngineClient, EngineApi
from core.errors import EngineUnavailable, MusubiError, PermissionDenied
from tui.config import ColorDecision, Settings
from tui.failures import FailureLog
from tui.state import SavedState

__all__ = ["AppContext", "AsyncEngineClient", "ConnState", "EngineApi", "EngineLink", "app_ctx", "utcnow"]

if TYPE_CHECKING:
    from textual.app import App
    from textual.signal import Signal

    from core.api.models import QuotaStatus, Whoami

ConnName = Literal["connecting", "connected", "reconnecting", "down"]

# Audit actions after which quota headroom may have changed.
QUOTA_ACTIONS = frozenset(
    {"usage.record", "usage.settle", "usage.reserve", "usage.release", "usage.expire", "quota.set", "quota.remove"}
)

# The event types the app follows: audit and quota alerts (Dashboard, Admin), job progress (Search's index panel),
# orchestration runs (the Dashboard; core/api/runs.py EVENT_TYPES).
STREAM_TYPES = "audit,quota.alert,job.progress,job.state,run.state,run.step,run.output,run.call,run.gate,run.note"


def utcnow() -> datetime:
    """Aware UTC now; tests replace the context's clock to freeze time."""
    return datetime.now(UTC)


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
    whoami: Whoami | None = None
    quotas: QuotaStatus | None = None
    quota_error: str | None = None
    # Every failed background call of this run, for F12 (tui.workers.WorkerContract).
    failures: FailureLog = field(default_factory=FailureLog)
    # Context kept across relaunches (tui.state); in memory only unless run() gives it a file.
    saved: SavedState = field(default_factory=lambda: SavedState(None))

    def attach(self, app: App[Any]) -> None:
        """Create the signals, owned by ``app`` (Textual unsubscribes removed widgets itself)."""
        from textual.signal import Signal

        self.conn_changed: Signal[ConnState] = Signal(app, "conn-changed")
        self.data_changed: Signal[str] = Signal(app, "data-changed")
        self.engine_event: Signal[dict[str, Any]] = Signal(app, "engine-event")

    @property
    def tenant(self) -> str:
        if self.whoami:
            return self.whoami["tenant"]
        return self.api.identity.tenant or "default"

    @property
    def user(self) -> str:
        if self.whoami:
            return self.whoami["user"]
        return self.api.identity.as_user or "…"

    def can(self, permission: str) -> bool:
        """Whether the current user holds ``permission`` (the engine still checks every call)."""
        return self.whoami is not None and permission in self.whoami["permissions"]

    def set_conn(self, state: ConnState) -> None:
        self.conn = state
        self.conn_changed.publish(state)

    async def refresh_quotas(self) -> None:
        """Re-read ``/v1/quotas``; a user without ``quotas.read`` gets a reason instead."""
        try:
            self.quotas = await self.api.call(calls.quota_status())
            self.quota_error = None
        except PermissionDenied as exc:
            self.quotas, self.quota_error = None, exc.message
        self.data_changed.publish("quotas")

    async def refresh_identity(self) -> None:
        self.whoami = await self.api.call(calls.whoami())
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
            async for ev in self.ctx.api.events(STREAM_TYPES):
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
