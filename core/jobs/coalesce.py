"""Progress events at a bounded rate: at most one per :data:`MIN_INTERVAL_S` per job.

A job may report progress thousands of times a second; subscribers (a progress
bar, the TUI) need a few updates a second.  :class:`Coalescer` publishes the
first report at once, and any later ones within the interval as one event at
its end, carrying the newest values: the last state is never lost, and a job
costs the event stream at most ``1 / MIN_INTERVAL_S`` events a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MIN_INTERVAL_S = 0.25  # ≤ 4 progress events per second per job


class Coalescer:
    """Calls ``emit`` at most once per ``interval`` seconds; reports in between are folded into the next call."""

    def __init__(
        self, emit: Callable[[], None], interval: float = MIN_INTERVAL_S, *,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self._emit = emit
        self.interval = interval
        self._clock = clock
        self._later = later
        self._last = float("-inf")
        self._timer: object | None = None
        self.emitted = 0

    def _schedule(self, delay: float, fn: Callable[[], None]) -> object:
        if self._later is not None:
            return self._later(delay, fn)
        return asyncio.get_running_loop().call_later(delay, fn)

    def report(self) -> None:
        """Something changed: emit now if the interval has passed, else once at its end."""
        if self._timer is not None:
            return  # an emit is already due; it will carry the newest values
        wait = self._last + self.interval - self._clock()
        if wait <= 0:
            self._fire()
        else:
            self._timer = self._schedule(wait, self._due)

    def _due(self) -> None:
        self._timer = None
        self._fire()

    def _fire(self) -> None:
        self._last = self._clock()
        self.emitted += 1
        self._emit()

    def flush(self) -> None:
        """Emit a pending report now (the job reached a final state), and stop the timer."""
        if self._stop_timer():
            self._fire()

    def close(self) -> None:
        """Drop a pending report without emitting it."""
        self._stop_timer()

    def _stop_timer(self) -> bool:
        """Cancel the pending emit; whether there was one."""
        timer, self._timer = self._timer, None
        if timer is None:
            return False
        cancel = getattr(timer, "cancel", None)
        if cancel is not None:
            cancel()
        return True
