"""Latency per tenant, provider and model: a small rolling recorder the run service feeds.

Each (tenant, provider, model) keeps its last ``window`` call latencies (a tenant sees only its
own calls: ``GET /v1/providers/stats``); percentiles are taken by
nearest rank over that window, so p95/p99 follow recent behaviour and memory stays bounded
(``window`` floats per pair).  Cheap enough to call on every model call (an append).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TypedDict


class LatencyRow(TypedDict):
    tenant: str
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


Key = tuple[str, str, str]  # tenant, provider, model


class LatencyRecorder:
    """Rolling latency windows per (tenant, provider, model)."""

    def __init__(self, window: int = 512) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._samples: dict[Key, deque[float]] = {}
        self._counts: dict[Key, int] = {}

    def record(self, tenant: str, provider: str, model: str, latency_ms: float) -> None:
        key = (tenant, provider, model)
        window = self._samples.get(key)
        if window is None:
            window = self._samples[key] = deque(maxlen=self.window)
        window.append(float(latency_ms))
        self._counts[key] = self._counts.get(key, 0) + 1

    def row(self, tenant: str, provider: str, model: str) -> LatencyRow | None:
        key = (tenant, provider, model)
        window = self._samples.get(key)
        if not window:
            return None
        values = sorted(window)
        return {"tenant": tenant, "provider": provider, "model": model, "count": self._counts[key],
                "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95), "p99_ms": percentile(values, 99)}

    def snapshot(self, tenant: str | None = None) -> list[LatencyRow]:
        """Every (provider, model)'s percentiles of ``tenant`` (None: of every tenant), sorted by
        tenant, provider, model."""
        rows = [self.row(*k) for k in sorted(self._samples) if tenant is None or k[0] == tenant]
        return [r for r in rows if r is not None]
