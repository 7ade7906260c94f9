"""The engine's live event stream: audit events, quota alerts, later run status.

Each subscriber (one ``GET /v1/events`` stream) is registered under its tenant,
so a write costs nothing for streams of other tenants, and an idle stream costs
nothing at all.  Rules (docs/api.md#get-v1events):

- **Caps**: at most :data:`MAX_STREAMS_PER_USER` streams per OS user (the socket
  peer, whoever they act as) and :data:`MAX_STREAMS` in all (``MUSUBI_MAX_STREAMS_PER_USER``
  and ``MUSUBI_MAX_STREAMS`` in the engine's environment change them); one more is
  refused with ``429 too_many_streams`` naming the cap.
- **Slow readers are dropped**: a stream whose undelivered events reach
  :data:`QUEUE_SIZE` is closed with reason ``slow_reader`` (its backlog is
  discarded; the close event names the last audit seq it delivered, so the
  client can catch up with ``GET /v1/audit?after_seq=N``) rather than silently
  losing events in the middle of what it shows.
- **Revocation**: after any change to roles, bindings, projects or a tenant's
  status, every stream re-checks its subscriber's access (and each stream does
  on its keep-alive too); a stream that lost what it was delivering is closed
  with reason ``revoked``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.config import env
from core.errors import MusubiError, TooManyStreams

log = logging.getLogger("musubi.engine.events")

QUEUE_SIZE = 1000
MAX_STREAMS_PER_USER = 16
MAX_STREAMS = 256
# Audit actions after which every stream re-checks its subscriber's access.
AUTHZ_PREFIXES = ("member.", "role.", "project.", "tenant.")


def _cap(name: str, default: int) -> int:
    """A cap from the engine's environment (set when it starts), else the default."""
    raw = env(name) or ""
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        log.warning("ignoring %s=%r: not a whole number; using %d", name, raw, default)
        return default


class Published:
    """One event as published: encoded once, whatever the number of streams it goes to."""

    __slots__ = ("event", "type", "_data")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.type = str(event.get("type", ""))
        self._data: str | None = None

    @property
    def data(self) -> str:
        if self._data is None:
            self._data = json.dumps(self.event, ensure_ascii=False, default=str)
        return self._data


# Re-checks a subscriber's access: the event types it may receive now, or raises when it has none.
Access = Callable[[], frozenset[str]]


@dataclass(eq=False)
class Subscriber:
    """One open stream: its tenant, who opened it, what it may receive, and its backlog."""

    tenant: str
    owner: str  # the OS user on the socket, whom the per-user cap counts
    kinds: frozenset[str]
    access: Access
    pending: deque[Published] = field(default_factory=deque)
    closed: dict[str, Any] | None = None
    last_audit_seq: int | None = None
    _waiter: asyncio.Future[None] | None = None
    on_close: Callable[[], None] | None = None

    def push(self, ev: Published) -> None:
        if self.closed is not None:
            return
        if len(self.pending) >= QUEUE_SIZE:
            self.pending.clear()
            self.close("slow_reader", f"the stream fell {QUEUE_SIZE} events behind (the client does not read fast "
                       "enough) and was closed; reconnect, and catch up on the audit log with "
                       "GET /v1/audit?after_seq=<last_audit_seq>.")
            return
        self.pending.append(ev)
        self._wake()

    def close(self, reason: str, message: str) -> None:
        if self.closed is not None:
            return
        self.closed = {"type": "stream.closed", "reason": reason, "message": message, "last_audit_seq": self.last_audit_seq}
        self._wake()
        if self.on_close is not None:
            self.on_close()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Until there is something to send (True) or ``timeout`` passed (False)."""
        if self.pending or self.closed is not None:
            return True
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True

    def recheck(self) -> None:
        """Close the stream if its subscriber lost any event type it was receiving."""
        if self.closed is not None:
            return
        try:
            now = self.access()
        except MusubiError as exc:
            self.close("revoked", f"access to the stream was revoked: {exc.message}")
            return
        lost = self.kinds - now
        if lost:
            self.close("revoked", f"access to {', '.join(sorted(lost))} events was revoked; reconnect to receive "
                       "what you may still see.")


class EventBus:
    """Fan-out of committed events to the subscribers of their tenant."""

    def __init__(self) -> None:
        self.max_streams = _cap("MUSUBI_MAX_STREAMS", MAX_STREAMS)
        self.max_per_user = _cap("MUSUBI_MAX_STREAMS_PER_USER", MAX_STREAMS_PER_USER)
        self._by_tenant: dict[str, set[Subscriber]] = {}
        self._per_user: Counter[str] = Counter()
        self._count = 0
        self._recheck_pending = False
        # In-engine listeners of every committed event of every tenant (notifications, issue 17):
        # each must return at once and never raise (core/integrations/notify.py queues and returns).
        self.taps: list[Callable[[str, dict[str, Any]], None]] = []

    def subscribe(self, tenant: str, owner: str, kinds: frozenset[str], access: Access) -> Subscriber:
        """Register a stream, or refuse it over a cap (``429 too_many_streams``)."""
        if self._per_user[owner] >= self.max_per_user:
            raise TooManyStreams(
                f"too many event streams: {owner} already has {self.max_per_user} open, the most one user may "
                "(MUSUBI_MAX_STREAMS_PER_USER); close one (e.g. another TUI) and retry.", cap="per_user",
                limit=self.max_per_user)
        if self._count >= self.max_streams:
            raise TooManyStreams(
                f"too many event streams: the engine already serves {self.max_streams}, the most it allows "
                "(MUSUBI_MAX_STREAMS); retry later.", cap="global", limit=self.max_streams)
        sub = Subscriber(tenant, owner, kinds, access)
        self._by_tenant.setdefault(tenant, set()).add(sub)
        self._per_user[owner] += 1
        self._count += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._by_tenant.get(sub.tenant)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._by_tenant[sub.tenant]
        self._per_user[sub.owner] -= 1
        if self._per_user[sub.owner] <= 0:
            del self._per_user[sub.owner]
        self._count -= 1

    def publish(self, tenant: str, event: dict[str, Any]) -> None:
        for tap in self.taps:
            tap(tenant, event)
        subs = self._by_tenant.get(tenant)
        if subs:
            ev = Published(event)
            for sub in list(subs):
                if ev.type in sub.kinds:
                    sub.push(ev)
                    if sub.closed is not None:
                        self.unsubscribe(sub)  # a dropped reader frees its place at once
        if event.get("type") == "audit":
            inner = event.get("event") or {}
            if inner.get("outcome") == "success" and str(inner.get("action", "")).startswith(AUTHZ_PREFIXES):
                self.access_changed()

    def access_changed(self) -> None:
        """Roles, bindings or a tenant's status changed: re-check every stream once, after this batch's events."""
        if self._recheck_pending or not self._count:
            return
        self._recheck_pending = True
        with contextlib.suppress(RuntimeError):  # no loop (tests of the bus alone): check now
            asyncio.get_running_loop().call_soon(self.recheck_all)
            return
        self.recheck_all()

    def recheck_all(self) -> None:
        self._recheck_pending = False
        for subs in list(self._by_tenant.values()):
            for sub in list(subs):
                try:
                    sub.recheck()
                except Exception:
                    log.exception("re-checking an event stream failed; closing it")
                    sub.close("error", "the engine could not re-check access to this stream; reconnect.")
                if sub.closed is not None:
                    self.unsubscribe(sub)

    def close_all(self, reason: str, message: str) -> None:
        for subs in list(self._by_tenant.values()):
            for sub in list(subs):
                sub.close(reason, message)
                self.unsubscribe(sub)

    def __len__(self) -> int:
        return self._count
