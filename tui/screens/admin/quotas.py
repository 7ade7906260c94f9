"""Admin ▸ Quotas: one live gauge per quota, edit a limit, and the last 24 hours of usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Sparkline, Static

from core.api import calls
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import FormField, FormModal, alerts_error, limit_error, user_name_error
from tui.widgets.format import parse_ts
from tui.widgets.gauge import QuotaGauge
from tui.widgets.panel import Panel

if TYPE_CHECKING:
    from core.api.responses import UsageBucket

METRICS = ("tokens", "requests", "cost_usd")
PERIODS = ("minute", "hour", "day", "month")
HISTORY_HOURS = 24
NOTE_ID = "gauges-note"  # the line shown instead of gauges (no quotas, or no access)


def hourly_series(rows: Sequence[Mapping[str, Any]], now: datetime, hours: int = HISTORY_HOURS) -> list[tuple[datetime, Mapping[str, Any]]]:
    """One bucket per hour for the last ``hours`` hours, zeros where nothing was used."""
    end = now.replace(minute=0, second=0, microsecond=0)
    by_hour = {}
    for r in rows:
        ts = parse_ts(r.get("bucket"))
        if ts is not None:
            by_hour[ts.replace(minute=0, second=0, microsecond=0)] = r
    start = end - timedelta(hours=hours - 1)
    empty = {"tokens": 0, "requests": 0, "cost_micros": 0}
    return [(start + timedelta(hours=i), by_hour.get(start + timedelta(hours=i), empty)) for i in range(hours)]


def history_summary(series: list[tuple[datetime, Mapping[str, Any]]]) -> str:
    tokens = sum(int(r["tokens"]) for _, r in series)
    requests = sum(int(r["requests"]) for _, r in series)
    cost = sum(int(r["cost_micros"]) for _, r in series) / 1_000_000
    peak_at, peak = max(series, key=lambda s: int(s[1]["tokens"]))
    first, last = series[0][0], series[-1][0]
    text = f"{first:%H:00} → {last:%H:00} UTC · {tokens:,} tokens · {requests:,} requests · ${cost:,.2f}"
    if int(peak["tokens"]):
        text += f" · peak {int(peak['tokens']):,} tokens at {peak_at:%H:00}"
    return text


class GaugeList(VerticalScroll):
    HELP = (
        "Quota gauges, live from the engine's event stream.\n\n"
        "tab / shift+tab (or up/down) move between gauges · **e** edit the focused quota's limit · "
        "**n** new quota · **r** refresh. Editing needs `quotas.manage`."
    )


class QuotasPane(AdminPane):
    BINDINGS = [
        Binding("e", "edit", "Edit limit", id="quotas_edit"),
        Binding("n", "new", "New quota", id="quotas_new"),
        Binding("r", "refresh", "Refresh", id="quotas_refresh"),
    ]

    class HistoryLoaded(Message):
        def __init__(self, rows: list[UsageBucket]) -> None:
            super().__init__()
            self.rows = rows

    def compose(self) -> ComposeResult:
        with Horizontal(id="quotas-split"):
            with Panel(title="Quotas", id="gauges-panel"):
                yield GaugeList(id="gauges")
            with Panel(title=f"Usage, last {HISTORY_HOURS} h (tokens per hour)", id="history-panel"):
                yield Sparkline([0.0], id="history-spark")
                yield Static("", id="history-summary", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.history: list[tuple[datetime, Mapping[str, Any]]] = []
        self._redraw_due = self._redrawing = False

    def _data_changed(self, what: str) -> None:
        super()._data_changed(what)
        if what == "quotas" and self.loaded:
            self._show_quotas()
            self.load_history()

    async def fetch(self) -> None:
        self._show_quotas()  # what the status bar already knows, at once
        await self.ctx.refresh_quotas()  # publishes data_changed("quotas"): redraw and history

    @work(exclusive=True, group="quotas-history", exit_on_error=False)
    async def load_history(self) -> None:
        data = await self.ctx.api.call(calls.usage_history("hour", HISTORY_HOURS))
        self.post_message(self.HistoryLoaded(data["rows"]))

    def on_quotas_pane_history_loaded(self, message: HistoryLoaded) -> None:
        self.history = hourly_series(message.rows, self.ctx.clock())
        self.query_one("#history-spark", Sparkline).data = [float(r["tokens"]) for _, r in self.history]
        self.query_one("#history-summary", Static).update(history_summary(self.history))

    def _show_quotas(self) -> None:
        """Make the gauges match ``ctx.quotas``, one redraw at a time, the newest data winning.

        Redraws await their removals and mounts, so two in a row (a fetch and a live
        ``data_changed``) can never insert a gauge whose id is still being removed.  A
        call made while a redraw runs only asks for one more pass, which reads the
        context afresh: a burst of changes costs at most two redraws.
        """
        self._redraw_due = True
        if not self._redrawing:
            self._redrawing = True
            self.run_worker(self._redraw_gauges(), group="quotas-gauges", description="draw quota gauges", exit_on_error=False)

    async def _redraw_gauges(self) -> None:
        try:
            while self._redraw_due:
                self._redraw_due = False
                await self._sync_gauges()
        finally:
            self._redrawing = False

    async def _sync_gauges(self) -> None:
        box = self.query_one(GaugeList)
        error = self.ctx.quota_error
        quotas = [] if error or not self.ctx.quotas else list(self.ctx.quotas["quotas"])
        note = None
        if error:
            note = f"You cannot see quotas here: {error}"
        elif not quotas:
            note = "No quotas: usage in this tenant is unlimited. Press n to add one."
        wanted = {f"quota-{q['id']}": q for q in quotas}
        keep = set(wanted) | ({NOTE_ID} if note else set())
        stale = [w for w in box.children if w.id not in keep]
        if stale:
            await box.remove_children(stale)
        if note is not None:
            shown = next(iter(box.query_children(f"#{NOTE_ID}").results(Static)), None)
            if shown is None:
                await box.mount(Static(note, id=NOTE_ID, markup=False))
            else:
                shown.update(note)
            return
        # Gauges of quotas still there are updated in place (focus stays on the one the user
        # is on); new ones are mounted at their place in the engine's order.
        now = self.ctx.clock()
        gauges = {g.id: g for g in box.query_children(QuotaGauge)}
        for i, (gid, q) in enumerate(wanted.items()):
            gauge = gauges.get(gid)
            if gauge is None:
                gauge = QuotaGauge(q, now, id=gid)
                await (box.mount(gauge, before=i) if i < len(box.children) else box.mount(gauge))
            else:
                gauge.now = now
                gauge.quota = q
                if box.children.index(gauge) != i:
                    box.move_child(gauge, before=i)

    def focused_quota(self) -> Mapping[str, Any] | None:
        focused = self.screen.focused
        if isinstance(focused, QuotaGauge):
            return focused.quota
        gauges = list(self.query(QuotaGauge))
        return gauges[0].quota if gauges else None

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_edit(self) -> None:
        q = self.focused_quota()
        if not q:
            self.notify("No quota to edit; press n to add one.", severity="warning")
            return
        unit = "dollars" if q["metric"] == "cost_usd" else str(q["metric"])
        alerts = ",".join(str(a) for a in q.get("alerts") or [])
        who = f" for {q['user']}" if q.get("user") else ""
        form = FormModal(
            f"Edit {q['metric']} per {q['period']}{who}",
            [
                FormField("limit", f"Limit ({unit} per {q['period']}):", value=str(q["limit"]), validate=limit_error),
                FormField("alerts", "Alert at (fractions, e.g. 0.8,1.0):", value=alerts, validate=alerts_error, required=False),
            ],
            "Save",
            intro=f"Now {q['used']} used of {q['limit']}. Lowering below use refuses new work until the window resets.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                self._put(q["metric"], q["period"], values["limit"], q.get("user"), values.get("alerts", ""))

        self.app.push_screen(form, submitted)

    def action_new(self) -> None:
        form = FormModal(
            "New quota",
            [
                FormField("metric", "Metric:", value="tokens", choices=[(m, m) for m in METRICS]),
                FormField("period", "Per:", value="day", choices=[(p, p) for p in PERIODS]),
                FormField("limit", "Limit (dollars for cost_usd):", validate=limit_error),
                FormField("user", "Only for user (empty: whole tenant):", validate=user_name_error, required=False),
                FormField("alerts", "Alert at (fractions, e.g. 0.8,1.0):", value="0.8,1.0", validate=alerts_error, required=False),
            ],
            "Create",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                self._put(values["metric"], values["period"], values["limit"], values.get("user") or None, values.get("alerts", ""))

        self.app.push_screen(form, submitted)

    def _put(self, metric: str, period: str, limit: str, user: str | None, alerts: str) -> None:
        amount = limit.replace(",", "").replace("_", "")
        who = f" for {user}" if user else ""
        self.write(
            f"set quota {metric}/{period}",
            lambda: self.ctx.api.call(calls.quota_set(metric, period, amount, user, alerts or None)),
            f"Quota {metric} per {period}{who} set to {amount}.",
        )
