"""The ``test.count`` job kind: registered only under the test hook ``MUSUBI_TEST_JOB_KINDS=1``.

A test hook, not a feature (docs/jobs.md#test-hook): it counts to ``n`` with a
checkpoint every ``every`` steps, so tests can watch progress, cancel it,
kill the engine mid-count and check the resume.  Its checkpoint records each
attempt's range (``attempts: [{"from", "to"}]``, ``to`` as committed), so a test
can prove that a resumed run started exactly where the committed work ended.

Params: ``n`` (steps, 0..10,000,000), ``delay_s`` (sleep per step, 0..10),
``every`` (steps per checkpoint, 1..n), ``fail_at`` (raise at that step),
``ignore_cancel`` (never look at the cancel flag: it must be stopped by force).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest

if TYPE_CHECKING:
    from core.jobs.handle import JobHandle
    from core.jobs.service import JobService

KIND = "test.count"


def _int(params: dict[str, Any], key: str, lo: int, hi: int, default: int | None) -> int | None:
    v = params.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadRequest(f"params.{key} must be a whole number from {lo:,} to {hi:,}.", field=f"params.{key}")
    return v


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - {"n", "delay_s", "every", "fail_at", "ignore_cancel"}
    if unknown:
        raise BadRequest(f"unknown params for {KIND}: {', '.join(sorted(unknown))}.", field="params")
    n = _int(params, "n", 0, 10_000_000, 100)
    delay = params.get("delay_s", 0.01)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 10:
        raise BadRequest("params.delay_s must be a number of seconds from 0 to 10.", field="params.delay_s")
    every = _int(params, "every", 1, 10_000_000, 10)
    fail_at = _int(params, "fail_at", 1, 10_000_000, None)
    ignore = params.get("ignore_cancel", False)
    if not isinstance(ignore, bool):
        raise BadRequest("params.ignore_cancel must be true or false.", field="params.ignore_cancel")
    return {"n": n, "delay_s": float(delay), "every": every, "fail_at": fail_at, "ignore_cancel": ignore}


async def count(h: JobHandle) -> dict[str, Any]:
    """Count from the checkpoint to ``n``, committing a checkpoint every ``every`` steps."""
    p = h.params
    n, delay, every = int(p["n"]), float(p["delay_s"]), int(p["every"])
    cp = h.last_checkpoint or {"count": 0, "attempts": []}
    i = int(cp["count"])
    attempts = [dict(a) for a in cp["attempts"]] + [{"from": i, "to": i}]
    h.progress(i, n, "steps")
    while i < n:
        if not p["ignore_cancel"]:
            h.raise_if_cancelled()
        await asyncio.sleep(delay)
        i += 1
        if p["fail_at"] == i:
            raise RuntimeError(f"failing at step {i} as asked (params.fail_at)")
        h.progress(i)
        if i % every == 0 or i == n:
            attempts[-1]["to"] = i
            await h.checkpoint({"count": i, "attempts": attempts})
    return {"count": i, "attempts": attempts}


def register_test_kinds(svc: JobService) -> None:
    svc.register(KIND, count, permission="index.build", check_params=check_params)
