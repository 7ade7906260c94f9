"""Group commit: many operations, one transaction, answers only after COMMIT.

Operations run on the event loop against in-memory state and append their
mutations to the open batch.  One commit thread writes batches in order; while
batch N commits, batch N+1 fills.  A caller awaits its batch's future, so it is
answered only once its writes are durable.  If a commit fails, that batch and
every batch queued behind it fail too (their operations saw its state), and the
engine reloads its state from storage before it takes more work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from core.storage.base import Mutation, Storage

log = logging.getLogger("musubi.engine.commit")


@dataclass
class Batch:
    mutations: list[Mutation] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    future: asyncio.Future[None] | None = None


class GroupCommitter:
    """Collects mutations into batches and commits them one transaction at a time."""

    def __init__(self, storage: Storage, on_failure: Callable[[], Any]) -> None:
        self.storage = storage
        self._on_failure = on_failure
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musubi-commit")
        self._batch = Batch()
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failed = False
        self.commits = 0
        self.mutations = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def batch(self) -> Batch:
        return self._batch

    def add(self, *mutations: Mutation) -> None:
        self._batch.mutations.extend(mutations)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop once the open batch has committed (e.g. publish events)."""
        self._batch.after_commit.append(fn)

    def seal(self) -> asyncio.Future[None]:
        """The future of the open batch; schedules it for commit if it holds anything."""
        b = self._batch
        if b.future is None:
            b.future = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(b)
        return b.future

    def pending(self) -> int:
        return len(self._batch.mutations)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            b = await self._queue.get()
            if b is None:
                return
            # Swap: anything added from now on goes into the next batch.
            if b is self._batch:
                self._batch = Batch()
            assert b.future is not None
            if self._failed:
                b.future.set_exception(_poisoned())
                continue
            try:
                if b.mutations:
                    await loop.run_in_executor(self._executor, self.storage.apply, b.mutations)
                    self.commits += 1
                    self.mutations += len(b.mutations)
            except Exception as exc:  # storage error: fail this and every batch queued behind it
                log.exception("group commit failed")
                self._failed = True
                if not b.future.done():
                    b.future.set_exception(exc)
                await self._recover()
                continue
            for fn in b.after_commit:
                try:
                    fn()
                except Exception:  # a subscriber problem must never fail a committed write
                    log.exception("after-commit hook failed")
            if not b.future.done():
                b.future.set_result(None)

    async def _recover(self) -> None:
        # Fail the batch that was filling (its operations saw the failed state), then reload.
        nxt = self._batch
        self._batch = Batch()
        if nxt.future is None:
            nxt.future = asyncio.get_running_loop().create_future()
        else:
            # It is already queued; drain the queue failing everything.
            pass
        while not self._queue.empty():
            q = self._queue.get_nowait()
            if q is not None and q.future is not None and not q.future.done():
                q.future.set_exception(_poisoned())
        if not nxt.future.done():
            nxt.future.set_exception(_poisoned())
        res = self._on_failure()
        if asyncio.iscoroutine(res):
            await res
        self._failed = False

    async def close(self) -> None:
        """Commit what is open, then stop the commit thread."""
        if self._batch.mutations or self._batch.after_commit:
            await self.seal()
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)


def _poisoned() -> Exception:
    from core.errors import StorageError

    return StorageError(
        "an earlier write in the same group commit failed, so this one was not applied; retry it.",
        code="write_failed",
    )
