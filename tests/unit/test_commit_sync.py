"""GroupCommitter.sync: a read of the database waits for every write queued before it, durable or not yet.

Found as a flaky jobs test: a job read ``failed`` (memory) while its ``job.fail`` group was still in the
journal's fsync, and the audit listing asked right after (a database read) answered without the event.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from core.engine.commit import GroupCommitter
from core.engine.journal import Journal
from core.storage.base import Insert
from core.storage.duckdb_store import DuckDBStorage


class HeldSync:
    """Stands in for the fsync helper: every sync waits until the test lets it through."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0

    async def sync(self) -> None:
        self.waiting += 1
        await self.release.wait()

    def close(self) -> None:
        pass


def test_a_read_waits_for_a_sealed_batch_still_being_made_durable(tmp_path: Path) -> None:
    storage = DuckDBStorage(tmp_path / "db.duckdb")

    async def scenario() -> None:
        c = GroupCommitter(storage, lambda: None, Journal(tmp_path / "journal.wal"))
        held = HeldSync()
        c.syncer = held  # type: ignore[assignment]
        c.start()
        # An operation's write: in memory it has happened; its group is sealed and now in the fsync.
        c.add(Insert("engine_meta", {"key": "job", "value": "failed"}))
        commit = c.seal()
        while not held.waiting:  # the commit loop took the batch and asked for its sync
            await asyncio.sleep(0)
        assert not c.batch.mutations  # nothing open: the read has no batch of its own to seal
        read = asyncio.ensure_future(c.sync())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not read.done()  # it waits for the write it could have seen in memory
        read.cancel()  # a reader giving up does not cancel the writers' shared commit
        await asyncio.sleep(0)
        assert not commit.cancelled()
        read = asyncio.ensure_future(c.sync())
        held.release.set()
        await asyncio.wait_for(commit, 30)
        await asyncio.wait_for(read, 30)
        assert await asyncio.to_thread(storage.meta_value, "job") == "failed"
        await c.close()

    try:
        asyncio.run(scenario())
    finally:
        storage.close()


def test_a_read_with_nothing_queued_does_not_wait(tmp_path: Path) -> None:
    storage = DuckDBStorage(tmp_path / "db.duckdb")

    async def scenario() -> None:
        c = GroupCommitter(storage, lambda: None, Journal(tmp_path / "journal.wal"))
        c.start()
        c.add(Insert("engine_meta", {"key": "k", "value": datetime(2026, 12, 6).isoformat()}))
        await c.seal()
        await asyncio.wait_for(c.sync(), 30)  # the acknowledged write is applied, then the read goes on
        assert await asyncio.to_thread(storage.meta_value, "k") == "2026-12-06T00:00:00"
        await asyncio.wait_for(c.sync(), 30)
        await c.close()

    try:
        asyncio.run(scenario())
    finally:
        storage.close()
