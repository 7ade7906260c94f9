"""Limits of ``musubi serve``: failed-authentication rate limiting and session caps.

Both are in memory: a restart of the server forgets them, which an attacker gains
nothing from (the engine still audits every refusal, and each restart is the operator's).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


class FailureLimiter:
    """At most ``limit`` failed authentications per client address in ``window`` seconds.

    An address over the limit is refused before it may try again, until its oldest
    failure in the window ages out.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._fails: dict[str, deque[float]] = {}
        self._told: dict[str, float] = {}

    def first_in_window(self, key: str) -> bool:
        """True once per window for ``key`` (an address and the kind of refusal): the refusals worth
        auditing, so a flood of the same refusal from one address does not flood the audit log."""
        now = self.clock()
        if len(self._told) > 10_000:
            self._told = {k: t for k, t in self._told.items() if now - t < self.window}
        last = self._told.get(key)
        if last is not None and now - last < self.window:
            return False
        self._told[key] = now
        return True

    def _recent(self, addr: str) -> deque[float]:
        q = self._fails.setdefault(addr, deque())
        cut = self.clock() - self.window
        while q and q[0] <= cut:
            q.popleft()
        return q

    def blocked(self, addr: str) -> bool:
        """Whether ``addr`` has used up its failures for now."""
        q = self._recent(addr)
        if not q:
            self._fails.pop(addr, None)  # keep the table small under a scan
        return len(q) >= self.limit

    def failed(self, addr: str) -> None:
        """Count one failure of ``addr``."""
        self._recent(addr).append(self.clock())

    def retry_after(self, addr: str) -> int:
        """Seconds until ``addr`` may try again (0 when it may now)."""
        q = self._recent(addr)
        return 0 if len(q) < self.limit else max(1, int(q[0] + self.window - self.clock()) + 1)


class SessionCaps:
    """At most ``total`` sessions at once, and at most ``per_user`` of one musubi user."""

    def __init__(self, total: int, per_user: int) -> None:
        self.total, self.per_user = total, per_user
        self.open: Counter[str] = Counter()

    def refuse(self, user: str) -> str | None:
        """Why one more session of ``user`` may not open now (None: it may; it is then counted)."""
        if sum(self.open.values()) >= self.total:
            return f"the server already has its {self.total} session(s); try again later"
        if self.open[user] >= self.per_user:
            return f"{user} already has {self.per_user} session(s) open; close one first"
        self.open[user] += 1
        return None

    def closed(self, user: str) -> None:
        """One session of ``user`` ended."""
        self.open[user] -= 1
        if self.open[user] <= 0:
            del self.open[user]


async def idle_sweep(timeout: float, sessions: Callable[[], Iterable[Any]],
                     end: Callable[[Any], Awaitable[None]]) -> None:
    """Forever: ``end`` each session whose ``last_input`` (monotonic) is ``timeout`` seconds old or more."""
    step = max(0.2, min(timeout / 4, 5.0))
    while True:
        await asyncio.sleep(step)
        now = time.monotonic()
        for s in list(sessions()):
            if now - s.last_input >= timeout:
                await end(s)
