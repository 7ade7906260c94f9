"""Small pure formatting helpers shared by screens (numbers, money, times, quota words)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def parse_ts(value: str | None) -> datetime | None:
    """Engine timestamps (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) as aware UTC datetimes."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def short_ts(value: str | None) -> str:
    """``2026-01-02 03:04:05`` (UTC) from an engine timestamp."""
    dt = parse_ts(value)
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "—"


def until(value: str | None, now: datetime) -> str:
    """A short relative duration such as ``3h 12m`` from ``now`` to ``value``."""
    dt = parse_ts(value)
    if dt is None:
        return "—"
    secs = int((dt - now).total_seconds())
    if secs <= 0:
        return "now"
    days, rem = divmod(secs, 86_400)
    hours, rem = divmod(rem, 3600)
    mins, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    if mins:
        return f"{mins}m {secs}s" if mins < 10 else f"{mins}m"
    return f"{secs}s"


def amount(metric: str, value: Any) -> str:
    """A quota amount in its unit: ``12,345`` tokens or ``$1.25``."""
    if metric == "cost_usd":
        try:
            return f"${float(value):,.2f}"
        except (TypeError, ValueError):
            return f"${value}"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def quota_name(q: Mapping[str, Any]) -> str:
    """``tokens/day`` or ``tokens/day (alice)`` for a user-scoped quota."""
    name = f"{q.get('metric')}/{q.get('period')}"
    return f"{name} ({q['user']})" if q.get("user") else name


def quota_level(q: Mapping[str, Any]) -> tuple[str, str]:
    """(word, css class) for how full a quota is; words, so state never rests on colour alone."""
    frac = float(q.get("fraction_used") or 0.0)
    alerts = [float(a) for a in q.get("alerts") or []]
    near = min(alerts) if alerts else 0.8
    if frac >= 1.0:
        return "FULL", "-full"
    if frac >= near:
        return "NEAR", "-near"
    return "OK", "-ok"


def headroom(q: Mapping[str, Any]) -> str:
    """``62% left`` of a quota."""
    frac = float(q.get("fraction_used") or 0.0)
    return f"{max(0.0, 1.0 - frac) * 100:.0f}% left"


def bar(fraction: float, width: int) -> str:
    """A text bar of ``width`` cells; full blocks for used, light shade for free."""
    width = max(width, 1)
    filled = min(width, max(0, round(min(fraction, 1.0) * width)))
    return "█" * filled + "░" * (width - filled)
