"""A writer cancelled while its group commit is in the fsync: the other writers of that batch are unaffected.

Several operations share one batch and so one commit future.  Awaited directly, a cancelled waiter
(a client gone mid-request, a run cancelled while its charge-once record commits) cancelled that shared
future: the batch was still journaled, yet every other writer in it was told ``CancelledError`` and a
read right after no longer waited for it.  Now the cancelled caller alone sees ``CancelledError``; its
write was accepted and its effects are in memory, so it commits (or fails) with the batch like the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from core.engine.runner import OpRunner
from core.errors import StorageError
from core.paths import HomePaths
from core.storage.base import Insert
from core.storage.duckdb_store import DuckDBStorage


class HeldSync:
    """Stands in for the fsync helper: every sync waits until the test lets it through (or fails it)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.fail = False
        self.waiting = 0

    async def sync(self) -> None:
        self.waiting += 1
        await self.release.wait()
        if self.fail:
            raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


def _writer(r: OpRunner, key: str) -> Callable[[], str]:
    def op() -> str:
        r.write(Insert("engine_meta", {"key": key, "value": "written"}))
        return key

    return op


async def _three_writers_in_one_fsync(r: OpRunner, held: HeldSync) -> list[asyncio.Task[str]]:
    """Three operations whose writes share one batch, with that batch now held in its fsync."""
    tasks = [asyncio.ensure_future(r.run(None, "test.write", f"k:{k}", _writer(r, k))) for k in "abc"]
    while not held.waiting:  # the commit loop took the batch and asked for its sync
        await asyncio.sleep(0)
    assert r.committer.commits == 0 and not r.committer.batch.mutations  # all three in the held batch
    return tasks


def _on_disk(home: Path) -> dict[str, str | None]:
    storage = DuckDBStorage(HomePaths(home).db)  # reopened: what survived, not what memory holds
    try:
        return {k: storage.meta_value(k) for k in "abc"}
    finally:
        storage.close()


def _run(home: Path, scenario: Callable[[OpRunner, HeldSync], Awaitable[None]]) -> None:
    paths = HomePaths(home)
    storage = DuckDBStorage(paths.db)

    async def main() -> None:
        r = OpRunner(paths, storage)
        held = HeldSync()
        r.committer.syncer = held  # type: ignore[assignment]
        r.committer.start()
        try:
            await scenario(r, held)
        finally:
            held.fail = False
            held.release.set()
            await r.committer.close()

    try:
        asyncio.run(main())
    finally:
        storage.close()


def test_a_cancelled_writer_leaves_the_others_answered_and_the_batch_committed(tmp_path: Path) -> None:
    async def scenario(r: OpRunner, held: HeldSync) -> None:
        a, b, c = await _three_writers_in_one_fsync(r, held)
        b.cancel()  # its client went away while the batch is in the fsync
        for _ in range(5):
            await asyncio.sleep(0)
        assert b.cancelled()  # the cancelled caller still sees its cancel at once
        assert not a.done() and not c.done(), "the cancel reached the shared commit: the others were cancelled with it"
        read = asyncio.ensure_future(r.committer.sync())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not read.done(), "a read no longer waits for the batch in the fsync"
        held.release.set()
        assert await asyncio.wait_for(a, 30) == "a"
        assert await asyncio.wait_for(c, 30) == "c"
        await asyncio.wait_for(read, 30)
        assert r.committer.commits == 1

    _run(tmp_path, scenario)
    # Accepted before the cancel, in memory and in the batch: committed with the others.
    assert _on_disk(tmp_path) == {"a": "written", "b": "written", "c": "written"}


def test_a_cancelled_writer_in_a_failing_batch_leaves_the_others_refused_and_nothing_written(tmp_path: Path) -> None:
    async def scenario(r: OpRunner, held: HeldSync) -> None:
        a, b, c = await _three_writers_in_one_fsync(r, held)
        b.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        assert b.cancelled()
        held.fail = True
        held.release.set()
        for t in (a, c):
            with pytest.raises(StorageError) as err:
                await asyncio.wait_for(t, 30)
            assert err.value.code == "write_failed"
        assert r.committer.commits == 0

    _run(tmp_path, scenario)
    assert _on_disk(tmp_path) == {"a": None, "b": None, "c": None}
