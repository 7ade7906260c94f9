"""What the four admin panes share: engine calls in workers under the worker contract (tui/workers.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual import work
from textual.containers import Vertical
from textual.timer import Timer
from textual.worker import Worker

from core.errors import (
    BadRequest,
    Conflict,
    EngineUnavailable,
    MusubiError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    TenantSuspended,
)
from tui.context import AppContext, ConnState, app_ctx
from tui.workers import WorkerContract


def error_title(exc: BaseException) -> str:
    """A short notification title for an engine refusal."""
    for cls, title in (
        (TenantSuspended, "Tenant suspended"),
        (PermissionDenied, "Permission denied"),
        (QuotaExceeded, "Quota exceeded"),
        (EngineUnavailable, "Engine unavailable"),
        (NotFound, "Not found"),
        (Conflict, "Refused"),
        (BadRequest, "Invalid input"),
        (MusubiError, "Engine error"),
    ):
        if isinstance(exc, cls):
            return title
    return "Unexpected error"


class AdminPane(WorkerContract, Vertical):
    """Base of the Tenants, Members, Quotas and Audit panes.

    Subclasses implement :meth:`reload`, a worker that fetches and posts a message
    with the result.  Writes go through :meth:`write`, which runs in the
    ``admin-write`` group (quitting asks first while one runs), notifies the
    outcome, and reloads.  Results come back as messages; every failure — a typed refusal
    or any other exception — becomes a notification titled by its kind and a row in the F12
    failure log (:class:`~tui.workers.WorkerContract`): a refused action never crashes the
    app and changes nothing.
    """

    loaded = False
    # Audit actions (prefixes) of the current tenant after which this pane reloads.
    LIVE_ACTIONS: tuple[str, ...] = ()
    # Live changes arrive in bursts; one reload after the burst, not one per event.
    LIVE_DELAY_S = 0.25

    @property
    def ctx(self) -> AppContext:
        return app_ctx(self)

    def on_mount(self) -> None:
        self.ctx.conn_changed.subscribe(self, self._conn_changed)
        self.ctx.data_changed.subscribe(self, self._data_changed)
        self._reload_timer: Timer | None = None
        if self.LIVE_ACTIONS:
            self.ctx.engine_event.subscribe(self, self._engine_event)

    def _conn_changed(self, state: ConnState) -> None:
        if state.name == "connected" and self.loaded:
            self.reload()

    def _data_changed(self, what: str) -> None:
        if what == "whoami" and self.loaded:
            self.reload()  # tenant switched or our roles changed

    def _engine_event(self, ev: dict[str, Any]) -> None:
        action = str((ev.get("event") or {}).get("action") or "")
        if self.loaded and ev.get("type") == "audit" and ev.get("tenant") == self.ctx.tenant and action.startswith(self.LIVE_ACTIONS):
            self.reload_soon()

    def reload_soon(self) -> None:
        """Reload once a burst of live changes is over (another client changed this pane's data)."""
        if self._reload_timer is None:
            self._reload_timer = self.set_timer(self.LIVE_DELAY_S, self._reload_due)

    def _reload_due(self) -> None:
        self._reload_timer = None
        self.reload()

    def ensure_loaded(self) -> None:
        """Load on first display, so the Admin mode costs nothing until its tab is opened."""
        if not self.loaded:
            self.loaded = True
            self.reload()

    @work(exclusive=True, group="admin-load", exit_on_error=False, description="load")
    async def reload(self) -> None:
        """Fetch again in a worker; a newer reload replaces a stale one (latest wins)."""
        await self.fetch()

    async def fetch(self) -> None:
        """Read from the engine and post a message with the result (subclasses)."""
        raise NotImplementedError

    def write(self, description: str, call: Callable[[], Awaitable[Any]], done: str) -> None:
        """Run one engine write in a worker; ``done`` is the success notification."""

        async def job() -> None:
            await call()
            self.notify(done, title="Done")
            self.reload()

        self.run_worker(job(), group="admin-write", description=description, exit_on_error=False)

    def failure_title(self, worker: Worker[Any], exc: BaseException) -> str:
        return error_title(exc)

    def failure_where(self, worker: Worker[Any]) -> str:
        # Which call failed ("load", "create tenant acme"), as the pane's notification title does not say.
        return f"{type(self).__name__} ({worker.description or worker.group})"
