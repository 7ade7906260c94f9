"""The Dashboard's small top row: the engine, the tenant and quota headroom, plus next steps for an empty screen.

Three lines each, so the runs below keep the room at 80×24; the lines are written short-first and
cut with an ellipsis where a panel is narrow.  F12 shows the home, socket and versions in full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from core.api import calls
from core.errors import MusubiError, NotFound
from tui.context import ConnState, app_ctx
from tui.screens import dashboard_view as view
from tui.widgets.format import parse_ts
from tui.widgets.panel import Panel

if TYPE_CHECKING:
    from core.api.responses import ProjectRow, TenantShown
    from tui.context import AppContext


class InfoBox(Static, can_focus=True):
    """Focusable text inside a dashboard panel (so F10 can maximise the panel)."""

    DEFAULT_CSS = "InfoBox { height: auto; width: 1fr; }"


class QuotaSummary(Widget, can_focus=True):
    """One line per quota, drawn for the current width at render time."""

    DEFAULT_CSS = "QuotaSummary { height: auto; width: 1fr; }"
    HELP = ("Every quota of this tenant: a bar that fills as it is used, the share left and a word (OK, NEAR, FULL); "
            "with room, the amount used of the limit. Admin (6) ▸ Quotas edits them.")

    def render(self) -> Content:
        ctx = app_ctx(self)
        if ctx.quota_error:
            return Content(f"You cannot see quotas here: {ctx.quota_error}")
        if ctx.quotas is None:
            return Content("waiting for the engine…")
        quotas = ctx.quotas.get("quotas")
        if not quotas:
            return Content("No quotas: usage is unlimited. Admin (6) ▸ Quotas adds one.")
        width = max(20, self.size.width or 60)
        return Content("\n").join(view.quota_lines(list(quotas), width))


class InfoPanels:
    """Mixin of the Dashboard: the top row's panels and the next steps of an empty Dashboard."""

    ctx: AppContext
    next_steps: list[str]

    def compose_info(self) -> ComposeResult:
        with Horizontal(id="dash-top"):
            yield Panel(InfoBox(id="dash-engine", markup=False), title="Engine", id="dash-engine-panel")
            yield Panel(InfoBox(id="dash-tenant", markup=False), title="Tenant", id="dash-tenant-panel")
            yield Panel(QuotaSummary(id="dash-quotas"), title="Quotas", id="dash-quotas-panel")

    def mount_info(self) -> None:
        self.ctx.conn_changed.subscribe(self, self._on_conn)  # type: ignore[arg-type]
        self.ctx.data_changed.subscribe(self, self._on_data)  # type: ignore[arg-type]
        self._tenant_info: TenantShown | None = None
        self.next_steps = []
        self._redraw()
        if self.ctx.conn.name == "connected":
            self.load_tenant()
            self.load_next_steps()

    def _on_conn(self, state: ConnState) -> None:
        if state.name == "connected":
            self.load_next_steps()
        self._redraw()

    def _on_data(self, what: str) -> None:
        if what == "whoami":
            self.load_tenant()
            self.load_next_steps()
        self._redraw()

    @work(exclusive=True, group="dashboard-next", exit_on_error=False)
    async def load_next_steps(self) -> None:
        """What to do next, from the real state: the project, its specs' coverage, a model provider."""
        steps: list[str] = []
        try:
            projects = await self.ctx.api.call(calls.projects())
        except MusubiError as exc:
            self.report_failure(exc, "Next steps", notify=False)  # type: ignore[attr-defined]
            projects = None
        current = next((p for p in projects or [] if p.get("current")), None)
        if projects is not None and current is None:
            steps.append("No project for this folder. Add one: musubi project add PATH (or start musubi inside a "
                         "repository); its specs then show in Trace (2).")
        elif current is not None:
            steps.append(await self._coverage_step(current))
        provider = await self._provider_step()
        if provider:
            steps.append(provider)
        self.next_steps = steps
        self._redraw()

    async def _provider_step(self) -> str | None:
        """What to set when the engine has no provider to call (its own list and hints), else None."""
        try:
            plist = await self.ctx.api.call(calls.providers_list())
        except NotFound:  # an engine from before the providers route: the app's own config is all we know
            return None if self.ctx.settings.providers else view.NO_PROVIDER
        except MusubiError as exc:
            self.report_failure(exc, "Next steps", notify=False)  # type: ignore[attr-defined]
            return None
        return view.provider_step(plist)

    async def _coverage_step(self, project: ProjectRow) -> str:
        name = project.get("name")
        try:
            s = await self.ctx.api.call(calls.trace_report(project.get("path"), view="summary"))
        except MusubiError as exc:
            self.report_failure(exc, "Next steps", notify=False)  # type: ignore[attr-defined]
            return f"Project {name}: press 2 for Trace to see its requirements' coverage."
        summary = s.get("summary") or {}
        if not summary.get("requirements"):
            return (f"Project {name} has no requirements yet: write headings like ## REQ-AUTH-001: Login in "
                    "storage/specs/*.md (docs/trace.md), then press 2 for Trace.")
        return (f"Project {name}: {summary['requirements']} requirements, coverage {summary.get('overall')}% "
                f"(grade {summary.get('grade')}) — press 2 for Trace to close the gaps.")

    @work(exclusive=True, group="dashboard-tenant", exit_on_error=False)
    async def load_tenant(self) -> None:
        try:
            self._tenant_info = await self.ctx.api.call(calls.tenant_show(self.ctx.tenant))
        except MusubiError as exc:
            self._tenant_info = None  # the tenant box then shows what whoami knows
            self.report_failure(exc, "Tenant details", notify=False)  # type: ignore[attr-defined]
        self._redraw()

    def _redraw(self) -> None:
        node: Widget = self  # type: ignore[assignment]
        node.query_one("#dash-engine", InfoBox).update(self.engine_text())
        node.query_one("#dash-tenant", InfoBox).update(self.tenant_text())
        node.query_one(QuotaSummary).refresh(layout=True)
        self.info_changed()
        steps = [Content.styled("Next steps", "bold"), *(Content(f"• {t}") for t in self.next_steps)]
        node.query_one("#dash-next", InfoBox).update(Content("\n").join(steps) if self.next_steps else Content(""))

    def info_changed(self) -> None:
        """Called after the panels or the next steps changed (the screen shows next steps only with no runs)."""

    def engine_text(self) -> Content:
        conn = self.ctx.conn
        h = self.ctx.health or {}
        head = f"{conn.symbol} {conn.name}" + (f" v{h['version']}" if h.get("version") else "")
        if conn.name in ("reconnecting", "down"):
            retry = f"next try {conn.retry_in:.0f}s" if conn.retry_in else "retrying"
            return Content("\n").join([Content.styled(head, "bold"), Content(conn.reason),
                                       Content(f"attempt {conn.attempt}, {retry}; ctrl+r now")])
        started = parse_ts(h.get("started_at"))
        tail = f"pid {h.get('pid')}" + (f" · up since {started:%H:%M}" if started else "") if h else "…"
        return Content("\n").join([Content.styled(head, "bold"), Content(tail)])

    def tenant_text(self) -> Content:
        ctx = self.ctx
        who = ctx.whoami
        if not who:
            return Content(f"{ctx.tenant}\nwaiting for the engine…")
        roles = ", ".join(who.get("roles") or []) or "no role"
        user = who.get("user")
        if who.get("real_user") != user:
            user = f"{who.get('real_user')} as {user}"
        third = f"project {who.get('project') or '—'}"
        if self._tenant_info:
            third += f" · {self._tenant_info.get('members')} members"
        head = Content.from_markup("[b]$t[/] ($s)", t=who.get("tenant"), s=who.get("tenant_status"))
        return Content("\n").join([head, Content(f"{user} — {roles}"), Content(third)])
