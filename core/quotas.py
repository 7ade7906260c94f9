"""Usage quotas: metrics, UTC calendar windows, limits and alert thresholds.

The engine keeps per-window counters in memory (rebuilt from ``usage_ledger`` at
start) and admits a charge only when every applicable hard limit, counting open
reservations, still holds afterwards.  This module is the pure part: windows and
arithmetic, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core import limits
from core.errors import BadRequest

METRICS = ("tokens", "requests", "cost_usd")
PERIODS = ("minute", "hour", "day", "month")
MICROS = limits.MICROS

# Every new tenant starts with these (tenant scope).
DEFAULT_QUOTAS: tuple[tuple[str, str, int], ...] = (("tokens", "day", 100_000), ("requests", "hour", 100))


def window_start(period: str, now: datetime) -> datetime:
    """Start of the UTC calendar window of ``period`` containing ``now`` (naive UTC)."""
    if period == "minute":
        return now.replace(second=0, microsecond=0)
    if period == "hour":
        return now.replace(minute=0, second=0, microsecond=0)
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise BadRequest(f"unknown period {period!r}: use one of {', '.join(PERIODS)}.", field="per")


def window_end(period: str, start: datetime) -> datetime:
    """When the window that began at ``start`` resets."""
    if period == "minute":
        return start + timedelta(minutes=1)
    if period == "hour":
        return start + timedelta(hours=1)
    if period == "day":
        return start + timedelta(days=1)
    if period == "month":
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    raise BadRequest(f"unknown period {period!r}: use one of {', '.join(PERIODS)}.", field="per")


def check_metric(metric: object) -> str:
    if metric not in METRICS:
        raise BadRequest(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}.", field="metric")
    return str(metric)


def check_period(period: object) -> str:
    if period not in PERIODS:
        raise BadRequest(f"unknown period {period!r}: use one of {', '.join(PERIODS)}.", field="per")
    return str(period)


def usd_to_micros(value: object, what: str = "cost", r: limits.Range = limits.LIMIT_COST) -> int:
    """Parse a dollar amount (string or number) into integer micro-dollars, exactly, within ``r``."""
    return limits.dollars(value, what, r)


def micros_to_usd(micros: int) -> str:
    """Format micro-dollars as a decimal string (no float rounding)."""
    return str((Decimal(micros) / MICROS).quantize(Decimal("0.000001")))


def parse_limit(metric: str, value: object) -> int:
    """A limit in the metric's unit: whole tokens/requests, or dollars for cost_usd (stored as micros).

    Bounded so that ``limit_value`` (BIGINT) holds it, and twice it too (core/limits.py).
    """
    if metric == "cost_usd":
        return limits.dollars(value, "limit", limits.LIMIT_COST)
    return limits.count(value, "limit", limits.LIMIT_COUNT)


def parse_alerts(value: object) -> tuple[float, ...]:
    """Alert thresholds as fractions of the limit, e.g. ``"0.8,1.0"`` or ``[0.8, 1.0]``."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = list(value)
    else:
        raise BadRequest(
            f"alerts must be a list of fractions or a text like \"0.8,1.0\" (got {type(value).__name__}).", field="alert"
        )
    if len(items) > limits.MAX_ALERTS:
        raise BadRequest(f"{len(items)} alert thresholds is too many; give at most {limits.MAX_ALERTS}.", field="alert")
    out: list[float] = []
    for it in items:
        if isinstance(it, bool) or not isinstance(it, (int, float, str)):
            raise BadRequest(f"alert threshold {it!r} is not a number; use fractions like 0.8,1.0.", field="alert")
        try:
            f = float(str(it).strip())
        except ValueError:
            raise BadRequest(f"alert threshold {it!r} is not a number; use fractions like 0.8,1.0.", field="alert") from None
        if not limits.ALERT_MIN_EXCLUSIVE < f <= limits.ALERT_MAX:  # NaN fails this too
            raise BadRequest(f"alert threshold {it!r} must be a fraction of the limit in (0, 10], e.g. 0.8.", field="alert")
        out.append(f)
    return tuple(sorted(set(out)))


def quota_resource(metric: object, period: object, user: object = None) -> str:
    """The audit ``resource`` of a quota, the same in successes and denials."""
    return f"quota:{metric}/{period}" + (f"/user:{user}" if user else "")


@dataclass
class Quota:
    """One limit: ``metric`` per ``period`` for a tenant, or for one user within it (``user`` set)."""

    id: int
    tenant_id: str
    metric: str
    period: str
    limit: int
    user: str | None = None
    alerts: tuple[float, ...] = ()

    @property
    def scope(self) -> str:
        return "user" if self.user else "tenant"

    @property
    def resource(self) -> str:
        return quota_resource(self.metric, self.period, self.user)

    def key(self, win: datetime) -> tuple[str, str | None, str, str, datetime]:
        return (self.tenant_id, self.user, self.metric, self.period, win)

    def describe(self) -> str:
        who = f"user {self.user}" if self.user else f"tenant {self.tenant_id}"
        lim = f"${micros_to_usd(self.limit)}" if self.metric == "cost_usd" else f"{self.limit:,} {self.metric}"
        return f"{lim} per {self.period} for {who}"


@dataclass
class Charge:
    """Amounts one operation adds, in stored units (cost in micro-dollars)."""

    tokens: int = 0
    requests: int = 0
    cost_usd: int = 0

    def get(self, metric: str) -> int:
        return int(getattr(self, metric))

    def as_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "requests": self.requests, "cost_usd": micros_to_usd(self.cost_usd)}


@dataclass
class Reservation:
    """Usage held against limits until settled, released, or expired."""

    id: str
    tenant_id: str
    user: str
    amount: Charge
    created_at: datetime
    expires_at: datetime
    project: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
