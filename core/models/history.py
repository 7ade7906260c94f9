"""Expected output from the tenant's ledger: median and p90 of output/input per model and task.

The ledger (``usage_ledger``) records input and output tokens of every call; with
the ``task_kind`` column (migration 002) each settled call also says what kind
of work it was.  :func:`output_ratios` turns those rows into ratio statistics;
:func:`expected_output` falls back to the per-task defaults of the registry until
a (model, task kind) has at least ``min_samples`` runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.models.registry import Registry

MAX_SAMPLES = 500  # newest runs per (model, task kind) that shape the statistics


@dataclass(frozen=True)
class RatioStats:
    """Output/input ratio statistics of one (model, task kind) in the ledger."""

    n: int
    p10: float
    median: float
    p90: float

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "p10": round(self.p10, 6), "median": round(self.median, 6), "p90": round(self.p90, 6)}


@dataclass(frozen=True)
class OutputEstimate:
    """Output tokens of one request: low / expected / high, and where the numbers came from."""

    low: int
    expected: int
    high: int
    source: str  # "default" or "history"
    samples: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"low": self.low, "expected": self.expected, "high": self.high, "source": self.source, "samples": self.samples}


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (the same definition as DuckDB's quantile_cont)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(sorted_values[lo])
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def output_ratios(rows: Iterable[tuple[str | None, str | None, int, int]], registry: Registry) -> dict[tuple[str, str], RatioStats]:
    """Ratio statistics per (canonical model id, task kind) from ``(model, task, input, output)`` rows.

    Rows are expected newest first; aliases are folded into their model's id,
    rows without a task kind, with no input or with an unknown model are skipped.
    """
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for model, task, inp, out in rows:
        if not model or not task or not inp or inp <= 0 or out is None or out < 0:
            continue
        if model not in registry:
            continue
        key = (registry.get(model).id, task)
        if len(groups[key]) < MAX_SAMPLES:
            groups[key].append(out / inp)
    stats = {}
    for key, vals in groups.items():
        vals.sort()
        stats[key] = RatioStats(len(vals), quantile(vals, 0.1), quantile(vals, 0.5), quantile(vals, 0.9))
    return stats


def expected_output(
    registry: Registry,
    model_id: str,
    task: str,
    input_tokens: int,
    max_output: int,
    history: Mapping[tuple[str, str], RatioStats] | None = None,
) -> OutputEstimate:
    """Output tokens of one request of ``input_tokens``, from history when there is enough."""
    d = registry.output_default(task)
    st = (history or {}).get((model_id, task))
    if st is not None and st.n >= registry.min_samples:
        low, exp, high = (round(r * input_tokens) for r in (st.p10, st.median, st.p90))
        low, exp, high = (min(max(v, 1), max_output) for v in (low, exp, high))
        return OutputEstimate(min(low, exp), exp, max(high, exp), "history", st.n)
    exp = min(max(round(d.ratio * input_tokens), d.floor), d.cap, max_output)
    high = min(max(round(d.p90_ratio * input_tokens), d.floor), d.cap, max_output)
    # The low end: half the expected ratio (a short answer), never above the expectation.
    low = min(max(round(d.ratio * 0.5 * input_tokens), d.floor // 2), exp)
    return OutputEstimate(low, exp, max(high, exp), "default", st.n if st else 0)


# -- reading the ledger -----------------------------------------------------------------------

LEDGER_SQL = f"""
SELECT model, task_kind,
       list(input_tokens ORDER BY ts DESC)[1:{MAX_SAMPLES}] AS inputs,
       list(output_tokens ORDER BY ts DESC)[1:{MAX_SAMPLES}] AS outputs
FROM usage_ledger
WHERE tenant_id = ? AND ts >= ? AND task_kind IS NOT NULL AND input_tokens > 0
GROUP BY model, task_kind
"""


def ledger_rows(storage: Any, tenant: str, since: datetime) -> list[tuple[str | None, str | None, int, int]]:
    """``(model, task, input, output)`` rows of ``tenant`` since ``since``, newest first per group.

    Uses the storage's DuckDB connection through a private cursor (safe from any
    thread).  A backend without one (a future PostgreSQL storage) returns no rows,
    so estimates fall back to the defaults rather than fail.
    """
    con = getattr(storage, "con", None)
    if con is None:
        return []
    cur = con.cursor()
    try:
        got = cur.execute(LEDGER_SQL, [tenant, since]).fetchall()
    finally:
        cur.close()
    rows: list[tuple[str | None, str | None, int, int]] = []
    for model, task, inputs, outputs in got:
        rows.extend((model, task, int(i), int(o)) for i, o in zip(inputs, outputs, strict=True))
    return rows
