"""Quota gauges: used / limit as a bar, with window, reset time and alert thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from textual.binding import Binding
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from tui.widgets.format import amount, bar, parse_ts, quota_level, quota_name, until


def _hm(value: str | None) -> str:
    dt = parse_ts(value)
    return dt.strftime("%m-%d %H:%M") if dt else "—"


def gauge_lines(q: Mapping[str, Any], now: datetime, width: int, compact: bool = False) -> list[Content]:
    """Render one quota; ``compact`` gives a single line for the dashboard."""
    metric = str(q.get("metric"))
    frac = float(q.get("fraction_used") or 0.0)
    word, _ = quota_level(q)
    pct = f"{frac * 100:.0f}%"
    used = f"{amount(metric, q.get('used'))} / {amount(metric, q.get('limit'))}"
    name = quota_name(q)
    level_style = {"OK": "$success", "NEAR": "$warning", "FULL": "$error"}[word]
    if compact:
        label = f"{name:<18.18} "
        tail = f" {pct:>4} {word:<4} {used}"
        bar_w = max(4, width - len(label) - len(tail))
        return [Content.assemble(label, (bar(frac, bar_w), level_style), tail)]
    scope = "user " + str(q.get("user")) if q.get("user") else "tenant"
    head_l = f"{name} · {scope}"
    head_r = f"{word} {pct}"
    head = Content.assemble((head_l, "bold"), " " * max(1, width - len(head_l) - len(head_r)), (head_r, "bold"))
    reserved = q.get("reserved")
    res = f" (reserved {amount(metric, reserved)})" if reserved not in (None, 0, "0", "0.000000") else ""
    tail = f" {used}{res}"
    bar_w = max(4, width - len(tail))
    gauge = Content.assemble((bar(frac, bar_w), level_style), tail)
    alerts = ",".join(f"{float(a) * 100:.0f}%" for a in q.get("alerts") or []) or "none"
    resets = q.get("resets_at")
    span, left = f"{_hm(q.get('window_start'))}→{_hm(resets)}", until(resets, now)
    # Longest wording that fits: the window, reset time and alert thresholds always stay.
    for info in (
        f"window {span} UTC · resets in {left} · alerts at {alerts}",
        f"window {span} · resets {left} · alerts {alerts}",
        f"{span} · reset {left} · alert {alerts}",
    ):
        if len(info) <= width:
            break
    return [head, gauge, Content(info)]


class QuotaGauge(Widget, can_focus=True):
    """One quota as three lines; focus it and press e to edit its limit (Admin ▸ Quotas)."""

    DEFAULT_CSS = """
    QuotaGauge { height: 3; width: 1fr; margin-bottom: 1; }
    QuotaGauge:focus { background: $boost; }
    QuotaGauge:focus > .gauge-focus { text-style: bold; }
    """
    BINDINGS = [
        Binding("down,j", "screen.focus_next", "Next", id="gauge_next", show=False),
        Binding("up,k", "screen.focus_previous", "Previous", id="gauge_prev", show=False),
    ]
    HELP = "A quota gauge: used and reserved against the limit in this window. **e** edits the limit."

    quota: reactive[Mapping[str, Any]] = reactive(dict, layout=False)

    def __init__(self, quota: Mapping[str, Any], now: datetime, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(QuotaGauge.quota, quota)
        self.now = now

    def render(self) -> Content:
        width = self.content_region.width or 60
        marker = "▶ " if self.has_focus else "  "  # focus shown by a symbol too, not only by colour
        lines = gauge_lines(self.quota, self.now, max(10, width - 2))
        return Content("\n").join(Content.assemble(marker if i == 0 else "  ", line) for i, line in enumerate(lines))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
