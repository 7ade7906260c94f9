"""The audit filter: which events a listing's filters select, as one pure definition.

The engine answers ``GET /v1/audit`` from its in-memory tail with it
(``core/engine/auditops.py``), the TUI's Admin ▸ Audit pane decides with it which
live events join its table, and the storage's SQL (``core/storage/duckdb_store.py``,
``_audit_filters``) states the same rules for the table (a test holds the two
together).  Light: the TUI imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.audit import OUTCOMES, ts_text
from core.errors import BadRequest


def parse_when(value: object, what: str) -> datetime | None:
    """An ISO date or datetime (UTC when no zone is given) as naive UTC; None for none."""
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{what} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC).", field=what
        ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def check_outcome(value: object) -> str | None:
    """The outcome filter (``success``, ``denied``, ``error``), None for none; a 400 naming the field otherwise."""
    if not value:
        return None
    if value not in OUTCOMES:
        raise BadRequest(f"outcome {value!r} is not one of {', '.join(OUTCOMES)}.", field="outcome")
    return str(value)


@dataclass(frozen=True)
class AuditFilter:
    """Filters of an audit listing; ``since``/``until`` as engine timestamp text (``format_ts``)."""

    actor: str | None = None  # the actor, or the impersonator behind it
    action: str | None = None  # exact, or a prefix when it ends with '*'
    outcome: str | None = None
    since: str | None = None  # inclusive
    until: str | None = None  # exclusive

    @classmethod
    def of(cls, filters: Mapping[str, Any]) -> AuditFilter:
        """From a listing's text filters (``actor``, ``action``, ``outcome``, ``since``, ``until``).

        Raises :class:`BadRequest` naming the field for an unknown outcome or a date that is not one.
        """
        since, until = parse_when(filters.get("since"), "since"), parse_when(filters.get("until"), "until")
        return cls(
            filters.get("actor") or None, filters.get("action") or None, check_outcome(filters.get("outcome")),
            ts_text(since), ts_text(until),
        )

    def __bool__(self) -> bool:
        """Whether any filter is set (an empty filter passes every event)."""
        return bool(self.actor or self.action or self.outcome or self.since or self.until)

    def matches(self, ev: Mapping[str, Any]) -> bool:
        """Whether the event (an audit event as the API answers it) passes every filter."""
        ts = ev.get("ts") or ""
        if (self.until and ts >= self.until) or (self.since and ts < self.since):
            return False
        if self.outcome and ev.get("outcome") != self.outcome:
            return False
        if self.actor and self.actor != ev.get("actor") and self.actor != (ev.get("details") or {}).get("impersonator"):
            return False
        action = self.action
        if action:
            got = str(ev.get("action", ""))
            return got.startswith(action[:-1]) if action.endswith("*") else got == action
        return True
