"""CallDesk.complete charges an answered call only once its ``sent`` row is durable (docs/runs.md#charge-once).

The request leaves while the ``sent`` row's group commit is in flight; these pin what happens to the
answer then: recorded only after that commit, never when the commit failed, and still recorded
when the run is cancelled while it waits (the provider already did the work).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import StorageError
from core.orchestration.calls import CallDesk


def _desk() -> tuple[CallDesk, list[str], list[int]]:
    seals: list[int] = []
    runner = SimpleNamespace(committer=SimpleNamespace(seal=lambda: seals.append(1)))
    desk = CallDesk(SimpleNamespace(r=runner))  # type: ignore[arg-type]
    recorded: list[str] = []
    desk._record = lambda d, st, call, *a: recorded.append(call.key)  # type: ignore[method-assign]
    desk.inflight["k"] = ("r", "writer", 10, 10)
    return desk, recorded, seals


def _complete(desk: CallDesk, fut: asyncio.Future[None] | None) -> Any:
    call = SimpleNamespace(key="k")
    return desk.complete(None, None, call, "text", None, 1.0, None, "summarise", fut)  # type: ignore[arg-type]


def test_the_answer_is_recorded_only_after_the_sent_row_commit() -> None:
    async def go() -> None:
        desk, recorded, seals = _desk()
        fut = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(_complete(desk, fut))
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorded == [] and not task.done()  # the answer is in, its `sent` row not durable yet
        fut.set_result(None)
        await task
        assert recorded == ["k"]
        await asyncio.sleep(0)
        assert seals  # the record is sealed into a commit even when nothing follows

    asyncio.run(go())


def test_an_already_durable_row_records_at_once_and_none_means_no_commit_to_wait_for() -> None:
    async def go() -> None:
        desk, recorded, _ = _desk()
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        await _complete(desk, fut)
        await _complete(desk, None)
        assert recorded == ["k", "k"]

    asyncio.run(go())


def test_a_failed_sent_row_commit_charges_nothing_and_raises() -> None:
    async def go() -> None:
        desk, recorded, _ = _desk()
        fut = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(_complete(desk, fut))
        await asyncio.sleep(0)
        fut.set_exception(StorageError("disk full", code="write_failed"))
        with pytest.raises(StorageError):
            await task
        assert recorded == [] and "k" not in desk.inflight

        done = asyncio.get_running_loop().create_future()
        done.set_exception(StorageError("disk full", code="write_failed"))
        desk.inflight["k"] = ("r", "writer", 10, 10)
        with pytest.raises(StorageError):
            await _complete(desk, done)
        assert recorded == [] and "k" not in desk.inflight

    asyncio.run(go())


def test_a_cancel_while_the_row_commits_still_records_the_answered_call() -> None:
    async def go() -> None:
        desk, recorded, seals = _desk()
        fut = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(_complete(desk, fut))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert recorded == []
        fut.set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)
        assert recorded == ["k"] and seals  # recorded and sealed although the run's task is gone

    asyncio.run(go())
