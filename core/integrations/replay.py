"""Slack's replay guard, durable across restarts (migration 012, ``inbound_replay``; docs/integrations.md#inbound).

The Teams bot keeps its accepted activities here too (system ``teams``, keyed by the activity; see
core/integrations/teamsin.py): what follows is said for Slack, the mechanism is the same.

A signed Slack request carries ``X-Slack-Request-Timestamp`` and an HMAC over it and the body, so
the same request sent again (a replay) has the same signature.  Slack refuses nothing itself:
the receiver must remember what it accepted for as long as the timestamp is inside the 5-minute
window (:data:`core.integrations.signing.WINDOW_S`); past that the request is refused as stale.

:class:`ReplayGuard` keeps those signatures in memory (loaded at engine start) and in DuckDB.
:meth:`ReplayGuard.claim` reserves a signature synchronously on the event loop, so two copies
of one request arriving together cannot both pass; the :class:`Claim` then writes its row **in
the same group commit as what the request did** (the gate's decision, via ``RunService.decide``'s
``also``), or on its own when the request changed nothing.  A crash therefore keeps both or
neither: after a restart a replay of a handled request is refused as a replay, and a request
whose handling never became durable may be delivered again.  A claim whose handling failed
is released, so the vendor's retry is not mistaken for a replay.

Rows whose timestamp left the window are deleted with the next row written (and those found
at start, with the first one), so the table holds about five minutes of clicks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.integrations.signing import WINDOW_S
from core.storage.base import Delete, Insert, Mutation

if TYPE_CHECKING:
    from core.engine.runner import OpRunner

TABLE = "inbound_replay"
Key = tuple[str, str, str]  # (tenant, system, signature)


def _naive_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _epoch(ts: datetime) -> float:
    return ts.replace(tzinfo=UTC).timestamp()


class Claim:
    """One accepted request's signature: written with the request's effect, or released if it failed."""

    def __init__(self, guard: ReplayGuard, key: Key, when: float) -> None:
        self.guard, self.key, self.when = guard, key, when
        self.written = False  # its row is in the batch of the operation that called write()
        self.durable = False  # that operation committed

    def write(self) -> None:
        """Inside an operation (``runner.run``): add the row (and the pruning) to its writes."""
        self.guard.runner_write(self.guard.mutations(self))
        self.written = True

    async def commit(self) -> None:
        """Make the row durable on its own, unless the request's operation already did."""
        if self.durable:
            return
        runner = self.guard.r
        if runner is not None:
            muts = self.guard.mutations(self)
            await runner.run(None, "integration.inbound", f"integration:{self.key[1]}", lambda: runner.write(*muts))
        self.written = self.durable = True

    def release(self) -> None:
        """The request's handling failed before its row was durable: forget it (a retry is not a replay)."""
        if not self.durable:
            self.guard.seen.pop(self.key, None)


class ReplayGuard:
    """Signatures accepted inside the window, per tenant and system; memory first, DuckDB behind."""

    def __init__(self, runner: OpRunner | None, rows: Iterable[dict[str, Any]] = (), *,
                 window_s: int = WINDOW_S, clock: Callable[[], float] = time.time) -> None:
        self.r = runner
        self.window_s, self.clock = window_s, clock
        self.seen: dict[Key, float] = {}  # key -> the request's timestamp (epoch seconds)
        self._expired: list[Key] = []  # rows loaded at start already past the window: deleted with the next write
        now = clock()
        for row in rows:
            key = (str(row["tenant_id"]), str(row["system"]), str(row["signature"]))
            when = _epoch(row["request_ts"])
            if self._live(when, now):
                self.seen[key] = when
            else:
                self._expired.append(key)

    def _live(self, when: float, now: float) -> bool:
        # A timestamp in the future is accepted up to the window too, so a row lives until when + window.
        return when + self.window_s >= now

    def claim(self, tenant: str, system: str, signature: str, when: float) -> Claim | None:
        """Reserve ``signature`` (verified, timestamp ``when`` inside the window); None when already seen."""
        key = (tenant, system, signature)
        if key in self.seen:
            return None
        self.seen[key] = when
        return Claim(self, key, when)

    def mutations(self, claim: Claim) -> list[Mutation]:
        """The claim's row, and deletes for every row that left the window (memory too)."""
        now = self.clock()
        gone = [k for k, when in self.seen.items() if not self._live(when, now) and k != claim.key]
        for k in gone:
            del self.seen[k]
        gone += self._expired
        self._expired = []
        tenant, system, signature = claim.key
        seen_at = self.r.now() if self.r is not None else _naive_utc(now)
        row = {"tenant_id": tenant, "system": system, "signature": signature,
               "request_ts": _naive_utc(claim.when), "seen_at": seen_at}
        # Delete before the insert: an upsert, so a row left behind by a claim released after all (its
        # operation committed but raised later) can never make the database refuse the group.
        return [*(Delete(TABLE, {"tenant_id": t, "system": s, "signature": g}) for t, s, g in [*gone, claim.key]),
                Insert(TABLE, row)]

    def runner_write(self, mutations: list[Mutation]) -> None:
        if self.r is not None:
            self.r.write(*mutations)
