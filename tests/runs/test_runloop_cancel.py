"""A run's attempt records its end however early it is cancelled: while it prepares too, not only in its steps.

Found as a flaky shapes test: a run cancelled right after it started was cancelled while its attempt was
preparing (reading the allowed models, warming the tokenizer, committing ``running``); the cancel left the
attempt without recording an end, so the run stayed ``queued`` with its job cancelled, forever.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import MusubiError
from core.orchestration import runloop
from core.orchestration.records import RunData, RunRecord

NOW = datetime(2026, 12, 6, 8, 0)


def _scenario(monkeypatch: pytest.MonkeyPatch, cancel_asked: bool) -> list[tuple[str, str | None, str | None]]:
    """Run an attempt, cancel it while it prepares; answer the ends it recorded (state, code, reason)."""
    d = RunData(RunRecord("r-1", "t", None, "wf", "f", None, "queued", "u", NOW, NOW, 200, 25, 60))
    ended: list[tuple[str, str | None, str | None]] = []

    async def finish(_svc: Any, data: RunData, state: str, code: str | None, reason: str | None) -> None:
        data.run.state = state
        ended.append((state, code, reason))

    async def scenario() -> None:
        preparing = asyncio.Event()

        async def prepare(*_a: Any) -> Any:
            preparing.set()
            await asyncio.Event().wait()  # a read, the tokenizer, the commit of "running": any await

        monkeypatch.setattr(runloop, "_prepare", prepare)
        monkeypatch.setattr(runloop, "finish", finish)
        svc = SimpleNamespace(data={"r-1": d}, _views={}, _stuck={}, _flush_output=lambda _r: None,
                              drop_live=lambda _r, _p=None: None)
        task = asyncio.ensure_future(runloop.execute(svc, SimpleNamespace(params={"run": "r-1"})))  # type: ignore[arg-type]
        await asyncio.wait_for(preparing.wait(), 30)
        d.run.cancel_asked, d.run.reason = cancel_asked, "mel"
        task.cancel()  # what JobService.cancel does to a running attempt
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    return ended


def test_a_run_cancelled_while_its_attempt_prepares_ends_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _scenario(monkeypatch, cancel_asked=True) == [("cancelled", "cancelled", "cancelled by mel")]


def test_an_engine_stopping_while_an_attempt_prepares_leaves_the_run_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended = _scenario(monkeypatch, cancel_asked=False)
    assert [e[0] for e in ended] == ["interrupted"]


def test_an_attempt_that_cannot_prepare_fails_the_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    d = RunData(RunRecord("r-1", "t", None, "wf", "f", None, "queued", "u", NOW, NOW, 200, 25, 60))
    ended: list[str] = []

    async def prepare(*_a: Any) -> Any:
        raise MusubiError("no such workflow", code="bad_request")

    async def finish(_svc: Any, data: RunData, state: str, code: str | None, reason: str | None) -> None:
        data.run.state = state
        ended.append(f"{state} {code} {reason}")

    monkeypatch.setattr(runloop, "_prepare", prepare)
    monkeypatch.setattr(runloop, "finish", finish)
    svc = SimpleNamespace(data={"r-1": d}, _views={}, _stuck={}, _flush_output=lambda _r: None,
                          drop_live=lambda _r, _p=None: None)
    out = asyncio.run(runloop.execute(svc, SimpleNamespace(params={"run": "r-1"})))  # type: ignore[arg-type]
    assert ended == ["failed error no such workflow"] and out == {"run": "r-1", "state": "failed"}
