"""Latency per provider and model: a small rolling recorder the run service feeds.

Each (provider, model) keeps its last ``window`` call latencies; percentiles are taken by
nearest rank over that window, so p95/p99 follow recent behaviour and memory stays bounded
(``window`` floats per pair).  Cheap enough to call on every model call (an append).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TypedDict


class LatencyRow(TypedDict):
    provider: str
    model: str
    count: int  # calls recorded in all (the window holds the last ``window`` of them)
    p50_ms: float
    p95_ms: float
    p99_ms: float


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of an ascending, non-empty list."""
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyRecorder:
    """Rolling latency windows per (provider, model)."""

    def __init__(self, window: int = 512) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._samples: dict[tuple[str, str], deque[float]] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def record(self, provider: str, model: str, latency_ms: float) -> None:
        key = (provider, model)
        window = self._samples.get(key)
        if window is None:
            window = self._samples[key] = deque(maxlen=self.window)
        window.append(float(latency_ms))
        self._counts[key] = self._counts.get(key, 0) + 1

    def row(self, provider: str, model: str) -> LatencyRow | None:
        window = self._samples.get((provider, model))
        if not window:
            return None
        values = sorted(window)
        return {"provider": provider, "model": model, "count": self._counts[(provider, model)],
                "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "p99_ms": percentile(values, 99)}

    def snapshot(self) -> list[LatencyRow]:
        """Every pair's percentiles, sorted by provider then model."""
        rows = [self.row(p, m) for p, m in sorted(self._samples)]
        return [r for r in rows if r is not None]
