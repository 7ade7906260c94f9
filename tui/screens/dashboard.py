"""Dashboard (mode 1): the engine, the current tenant and its quota headroom at a glance."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from core.api import calls
from core.errors import MusubiError
from tui.context import ConnState, app_ctx
from tui.screens.base import ModeScreen
from tui.widgets.format import short_ts
from tui.widgets.gauge import gauge_lines
from tui.widgets.panel import Panel

if TYPE_CHECKING:
    from core.api.responses import TenantShown


class InfoBox(Static, can_focus=True):
    """Focusable text inside a dashboard panel (so F10 can maximise the panel)."""

    DEFAULT_CSS = "InfoBox { height: auto; width: 1fr; }"


class QuotaSummary(Widget, can_focus=True):
    """One line per quota, drawn for the current width at render time."""

    DEFAULT_CSS = "QuotaSummary { height: auto; width: 1fr; }"
    HELP = "Every quota of this tenant as a bar with a word (OK, NEAR, FULL). Admin (6) ▸ Quotas edits them."

    def render(self) -> Content:
        ctx = app_ctx(self)
        if ctx.quota_error:
            return Content(f"You cannot see quotas here: {ctx.quota_error}")
        if ctx.quotas is None:
            return Content("waiting for the engine…")
        quotas = ctx.quotas.get("quotas")
        if not quotas:
            return Content("No quotas in this tenant: usage is unlimited. Admin (6) ▸ Quotas adds one.")
        width, now = max(30, self.size.width or 70), ctx.clock()
        return Content("\n").join(line for q in quotas for line in gauge_lines(q, now, width, compact=True))


class DashboardScreen(ModeScreen):
    MODE = "dashboard"
    WORKER_TITLES: ClassVar[dict[str, str]] = {"dashboard-tenant": "Tenant details"}
    HELP = (
        "Dashboard: the engine connection, your tenant and role, and every quota's headroom. "
        "It updates live from the engine's event stream. F8 switches tenant; ctrl+r reconnects."
    )

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dash-top"):
            yield Panel(InfoBox(id="dash-engine"), title="Engine", id="dash-engine-panel")
            yield Panel(InfoBox(id="dash-tenant"), title="Tenant", id="dash-tenant-panel")
        yield Panel(QuotaSummary(id="dash-quotas"), title="Quotas", id="dash-quotas-panel")

    def on_mount(self) -> None:
        self.ctx.conn_changed.subscribe(self, self._on_conn)
        self.ctx.data_changed.subscribe(self, self._on_data)
        self._tenant_info: TenantShown | None = None
        self._redraw()
        if self.ctx.conn.name == "connected":
            self.load_tenant()

    def _on_conn(self, state: ConnState) -> None:
        self._redraw()

    def _on_data(self, what: str) -> None:
        if what == "whoami":
            self.load_tenant()
        self._redraw()

    @work(exclusive=True, group="dashboard-tenant", exit_on_error=False)
    async def load_tenant(self) -> None:
        try:
            self._tenant_info = await self.ctx.api.call(calls.tenant_show(self.ctx.tenant))
        except MusubiError as exc:
            self._tenant_info = None  # the tenant box then shows what whoami knows
            self.report_failure(exc, "Tenant details", notify=False)
        self._redraw()

    def _redraw(self) -> None:
        self.query_one("#dash-engine", InfoBox).update(self._engine_text())
        self.query_one("#dash-tenant", InfoBox).update(self._tenant_text())
        self.query_one(QuotaSummary).refresh(layout=True)

    def _engine_text(self) -> Content:
        ctx, conn = self.ctx, self.ctx.conn
        lines = [Content.from_markup("[b]$sym $name[/]", sym=conn.symbol, name=conn.name)]
        if conn.name in ("reconnecting", "down"):
            lines.append(Content(f"{conn.reason}"))
            retry = f"next attempt in {conn.retry_in:.0f}s" if conn.retry_in else "retrying"
            lines.append(Content(f"attempt {conn.attempt}, {retry}; ctrl+r reconnects now"))
        h = ctx.health or {}
        if h:
            lines.append(Content(f"version {h.get('version')} · pid {h.get('pid')}"))
            lines.append(Content(f"started {short_ts(h.get('started_at'))} UTC"))
        lines.append(Content(f"home   {ctx.api.paths.home}"))
        lines.append(Content(f"socket {ctx.api.paths.socket}"))
        return Content("\n").join(lines)

    def _tenant_text(self) -> Content:
        ctx = self.ctx
        who = ctx.whoami
        if not who:
            return Content(f"tenant {ctx.tenant}\nwaiting for the engine…")
        roles = ", ".join(who.get("roles") or []) or "no role"
        lines = [
            Content.from_markup("[b]$t[/] ($s)", t=who.get("tenant"), s=who.get("tenant_status")),
            Content(f"you: {who.get('user')} — {roles}"),
        ]
        if who.get("real_user") != who.get("user"):
            lines.append(Content(f"acting as {who.get('user')} (real user {who.get('real_user')})"))
        lines.append(Content(f"project: {who.get('project') or '— (none for this folder)'}"))
        info = self._tenant_info
        if info:
            lines.append(Content(f"members {info.get('members')} · projects {len(info.get('projects') or [])} · audit events {info.get('audit_head_seq')}"))
        lines.append(Content(f"{len(who.get('permissions') or [])} permissions · F8 switch tenant"))
        return Content("\n").join(lines)
