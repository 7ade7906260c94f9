"""Group commit: many operations, one durable write, answers only after it.

Operations run on the event loop against in-memory state and append their
mutations to the open batch.  The commit loop (a task on the event loop) takes
every batch queued so far, appends them to the write-ahead journal as one
write (core/engine/journal.py), has a helper process fsync it
(core/engine/syncer.py: no GIL handover on the way back) and only then
resolves their futures, so a caller is answered once its writes are durable.
The apply thread moves journaled groups into DuckDB in large transactions.  If
a journal write fails, that batch and every batch queued behind it fail too
(their operations saw its state), their bytes are cut off the journal, and the
engine reloads its state from storage before it answers them; batches made
while that reload ran are refused as well.  A group the database refuses as
such is quarantined (core/engine/quarantine.py) instead of retried forever, and
the state is then reloaded the same way, since memory held that group's effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.engine.journal import Journal, encode
from core.engine.quarantine import ApplyResult, Quarantined, apply_groups
from core.engine.syncer import SyncHelper
from core.errors import StorageError
from core.storage.base import Mutation, Storage

log = logging.getLogger("musubi.engine.commit")

APPLY_EVERY_S = 0.5  # how stale DuckDB may get behind the journal when nobody reads
APPLY_MAX_MUTATIONS = 20_000
# DuckDB checkpoints its own WAL at 8 MB (core/storage/duckdb_store.py) when it can; it
# cannot while a read holds an older transaction open (a long verify or export), and then
# its WAL, and the memory holding the rows committed since its last checkpoint, would keep
# growing.  Past this size the apply thread asks for a checkpoint itself after an apply.
CHECKPOINT_WAL_BYTES = 16 * 2**20


@dataclass
class Batch:
    mutations: list[Mutation] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    future: asyncio.Future[None] | None = None
    epoch: int = 0  # the state generation its operations ran against


class GroupCommitter:
    """Collects mutations into batches, journals them durably, applies them to storage in bulk."""

    def __init__(
        self, storage: Storage, on_failure: Callable[[], Any], journal: Journal, next_no: int = 1, *,
        home: Path | None = None, on_quarantine: Callable[[list[Quarantined]], Any] | None = None,
        quarantined: int = 0,
    ) -> None:
        self.storage = storage
        self.journal = journal
        self._on_failure = on_failure
        self.home = home if home is not None else journal.path.parent
        self._on_quarantine = on_quarantine
        self.quarantined = quarantined  # groups set aside in this home, ever
        # Quarantined groups not yet announced (audited), and whether memory still holds
        # their effects (then state is reloaded first, as after a failed journal write).
        self._announce: list[Quarantined] = []
        self._reload_needed = False
        self._announcing: set[asyncio.Task[Any]] = set()
        self.syncer = SyncHelper(journal.fd)
        self._apply_exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musubi-apply")
        # The state generation, bumped when state is rebuilt after a failed write: a batch
        # of an older one was computed from the failed state and is refused.
        self._epoch = 0
        self._batch = Batch()
        self._last_sealed: asyncio.Future[None] | None = None  # the future of the newest sealed batch
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._apply_task: asyncio.Task[None] | None = None
        self._failed = False
        self._next_no = next_no
        self.written_no = next_no - 1  # last group durable in the journal
        self.applied_no = next_no - 1  # last group in storage
        self._unapplied: list[tuple[int, list[Mutation]]] = []
        self._unapplied_n = 0  # mutations in _unapplied
        self._apply_wake = asyncio.Event()
        # One apply at a time: a recovery that must see storage hold every journaled group
        # before it reloads state waits for the apply thread's transaction in flight.
        self._apply_lock = asyncio.Lock()
        self._applied_cond = asyncio.Condition()
        self._apply_error: Exception | None = None
        self._stopping = False
        self.commits = 0
        self.applies = 0
        self.checkpoints = 0  # CHECKPOINTs the apply thread asked for
        self.trim_s = 0.0  # time spent handing freed memory back to the OS
        self.mutations = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        self._apply_task = loop.create_task(self._applier())
        if self._announce:  # quarantined by the journal replay at start
            self._queue.put_nowait(Batch())

    @property
    def batch(self) -> Batch:
        return self._batch

    def add(self, *mutations: Mutation) -> None:
        self._batch.mutations.extend(mutations)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop once the open batch is durable (e.g. publish events)."""
        self._batch.after_commit.append(fn)

    def seal(self) -> asyncio.Future[None]:
        """The future of the open batch; schedules it for commit."""
        b = self._batch
        if b.future is None:
            b.future = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(b)
            self._last_sealed = b.future
        return b.future

    def pending(self) -> int:
        return len(self._batch.mutations)

    async def sync(self) -> None:
        """Wait until storage holds every write queued so far (before querying it).

        Not only the acknowledged ones: a sealed batch still being made durable has its effects in
        memory already (a job reads ``failed`` while its ``job.fail`` event is in the fsync), so a
        read that ignored it could answer a database older than what the caller just saw.
        """
        if self._batch.mutations:
            self.seal()
        last = self._last_sealed
        if last is not None and not last.done():
            # Batches are made durable in order: once the last sealed one is, so is every earlier one.
            # Shielded: the batch's future is shared by its writers, a reader's cancel must not cancel it.
            await asyncio.shield(last)
        target = self.written_no
        if self.applied_no >= target:
            return
        self._apply_wake.set()
        async with self._applied_cond:
            while self.applied_no < target:
                if self._apply_error is not None:
                    raise StorageError(f"the database is behind the journal: {self._apply_error}", code="write_failed")
                await self._applied_cond.wait()

    # -- the commit loop ------------------------------------------------------------------

    async def _write(self, groups: list[tuple[int, list[Mutation]]]) -> None:
        """One journal write and one sync for all groups; on failure nothing of them stays."""
        data = b"".join(encode(no, muts) for no, muts in groups)
        if self.journal.size and self.applied_no >= self.written_no:
            # Everything journaled is in storage: start the journal afresh (the sync below
            # makes the truncation durable along with the new groups).
            self.journal.reset()
        start = self.journal.size
        # Page-cache write on the loop thread: microseconds, and no thread handover.
        self.journal.write(data)
        try:
            await self.syncer.sync()
        except BaseException:
            # Not acknowledged, so it must not come back from a replay either.
            self.journal.cut(start)
            raise

    async def _run(self) -> None:
        while True:
            raw: list[Batch | None] = [await self._queue.get()]
            while not self._queue.empty():
                raw.append(self._queue.get_nowait())
            stop = None in raw
            batches: list[Batch] = [b for b in raw if b is not None]
            for b in batches:
                if b is self._batch:
                    self._batch = Batch(epoch=self._epoch)  # anything added from now on goes into the next batch
            if self._reload_needed and not self._failed:
                # A group was quarantined: memory holds its effects and every operation since
                # ran against them.  Rebuild state from storage as after a failed write: what
                # is queued or filling now is refused (not journaled, so nothing is lost).
                self._reload_needed = False
                self._failed = True
                await self._recover()
                for b in batches:
                    if b.future is not None and not b.future.done():
                        b.future.set_exception(_requarantined())
                batches = []
            if self._announce and not self._failed and not self._reload_needed:
                self._announce_quarantined()
            if self._failed:
                # A previous recovery could not finish (storage unwritable): try again first.
                await self._try_recover()
            if self._failed:
                for b in batches:
                    if b.future is not None and not b.future.done():
                        b.future.set_exception(_poisoned())
                if stop:
                    return
                continue
            stale = [b for b in batches if b.epoch != self._epoch]
            if stale:
                # Filled while a failed write's state was being rebuilt: refuse them.
                for b in stale:
                    if b.future is not None and not b.future.done():
                        b.future.set_exception(_poisoned())
                batches = [b for b in batches if b.epoch == self._epoch]
            groups = []
            for b in batches:
                if b.mutations:
                    groups.append((self._next_no, b.mutations))
                    self._next_no += 1
            try:
                if groups:
                    await self._write(groups)
                    n = sum(len(m) for _n, m in groups)
                    self.commits += 1
                    self.mutations += n
                    self.written_no = groups[-1][0]
                    self._unapplied.extend(groups)
                    self._unapplied_n += n
                    if self._unapplied_n >= APPLY_MAX_MUTATIONS:
                        self._apply_wake.set()
            except Exception as exc:  # journal or storage error: fail these and everything behind them
                log.exception("group commit failed")
                self._failed = True
                err = exc if isinstance(exc, StorageError) else StorageError(
                    f"could not make the write durable ({type(exc).__name__}: {exc}); nothing was changed. "
                    "Check free disk space and permissions of $MUSUBI_HOME, then retry.",
                    code="write_failed",
                )
                # Rebuild state first, so a refused caller never sees the failed write's effects.
                await self._recover()
                for b in batches:
                    if b.future is not None and not b.future.done():
                        b.future.set_exception(err)
                if stop:
                    return
                continue
            for b in batches:
                for fn in b.after_commit:
                    try:
                        fn()
                    except Exception:  # a subscriber problem must never fail a durable write
                        log.exception("after-commit hook failed")
                if b.future is not None and not b.future.done():
                    b.future.set_result(None)
            if stop:
                return

    async def _recover(self) -> None:
        # Fail the batch that was filling (its operations saw the failed state), then reload.
        nxt = self._batch
        self._batch = Batch(epoch=self._epoch)
        while not self._queue.empty():
            q = self._queue.get_nowait()
            if q is not None and q.future is not None and not q.future.done():
                q.future.set_exception(_poisoned())
        if nxt.future is not None and not nxt.future.done():
            nxt.future.set_exception(_poisoned())
        await self._try_recover()

    async def _try_recover(self) -> None:
        """Bring storage up to the journal, then rebuild state from it; stay failed if that fails.

        While failed, every write is refused with ``write_failed`` (reads still work),
        and the next write attempt tries again: nothing is answered from a state
        that storage does not hold.
        """
        try:
            await self._apply_now()  # storage must hold everything journaled before state is rebuilt
            res = self._on_failure()
            if asyncio.iscoroutine(res):
                await res
        except Exception:
            log.exception("recovery failed; writes stay refused until storage is writable again")
            return
        # Operations that ran while this rebuild awaited storage saw the failed state; their
        # batches (sealed before they awaited) carry the old generation and are refused.
        self._epoch += 1
        self._batch = Batch(epoch=self._epoch)
        self._failed = False

    # -- quarantine -----------------------------------------------------------------------

    def quarantine_found(self, groups: list[Quarantined], *, reload: bool) -> None:
        """Note quarantined groups: reload state first when memory holds their effects, then audit them."""
        self.quarantined += len(groups)
        self._announce.extend(groups)
        self._reload_needed = self._reload_needed or reload
        if self._task is not None:
            self._queue.put_nowait(Batch())  # wake the commit loop, which does both

    def _announce_quarantined(self) -> None:
        groups, self._announce = self._announce, []
        if self._on_quarantine is None:
            return
        res = self._on_quarantine(groups)
        if asyncio.iscoroutine(res):
            task = asyncio.get_running_loop().create_task(res)
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)

    # -- the apply loop -------------------------------------------------------------------

    async def _apply_now(self) -> None:
        async with self._apply_lock:
            await self._apply_locked()

    async def _apply_locked(self) -> None:
        if not self._unapplied:
            return
        groups, self._unapplied = self._unapplied, []
        self._unapplied_n = 0
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC).replace(tzinfo=None)
        res = await loop.run_in_executor(self._apply_exec, self._apply_groups, groups, now)
        if res.done:
            async with self._applied_cond:
                self.applied_no = groups[res.done - 1][0]
                self._applied_cond.notify_all()
            self.applies += 1
        if res.quarantined:
            self.quarantine_found(res.quarantined, reload=True)
        if res.error is not None:
            # Keep the rest: the journal still has them and they are retried.
            self._unapplied = groups[res.done:] + self._unapplied
            self._unapplied_n = sum(len(m) for _n, m in self._unapplied)
            self._apply_error = res.error
            log.error("applying the journal to storage failed; will retry: %s", res.error)
            async with self._applied_cond:
                self._applied_cond.notify_all()
            raise res.error
        self._apply_error = None

    def _apply_groups(self, groups: list[tuple[int, list[Mutation]]], now: datetime) -> ApplyResult:
        """In the apply thread: apply (quarantining what storage refuses), then checkpoint if due."""
        res = apply_groups(self.storage, groups, self.home, now)
        wal_size = getattr(self.storage, "wal_size", None)
        if not res.done or wal_size is None:
            return res
        if wal_size() > CHECKPOINT_WAL_BYTES:
            try:
                self.storage.checkpoint()
                self.checkpoints += 1
            except Exception as exc:  # e.g. a long read still open: the next apply tries again
                log.info("database checkpoint postponed: %s", exc)
        # An apply frees its statement buffers, and a checkpoint (DuckDB's own at 8 MB, or
        # the one above) the rows the WAL held: give that memory back to the OS.
        release = getattr(self.storage, "release_memory", None)
        if release is not None:
            t0 = time.perf_counter()
            release()
            self.trim_s += time.perf_counter() - t0
        return res

    async def _applier(self) -> None:
        backoff = APPLY_EVERY_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._apply_wake.wait(), timeout=APPLY_EVERY_S)
            self._apply_wake.clear()
            try:
                await self._apply_now()
                backoff = APPLY_EVERY_S
            except Exception:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            if self._stopping and not self._unapplied:
                return

    async def close(self) -> None:
        """Journal what is open, apply everything to storage, then stop both threads."""
        if self._batch.mutations or self._batch.after_commit:
            await asyncio.shield(self.seal())  # the batch's writers share its future: never cancel it
        # Apply while the commit loop still runs, so a group quarantined now is still
        # audited (its announcement is itself a write to journal and apply).
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(Exception):
                await self._apply_now()
            if not (self._announce or self._reload_needed or self._announcing) or time.monotonic() > deadline:
                break
            if self._announcing:
                await asyncio.wait(set(self._announcing), timeout=max(deadline - time.monotonic(), 0.01))
            else:
                self._queue.put_nowait(Batch())  # the commit loop reloads, then announces
                await asyncio.sleep(0.05)
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        self._stopping = True
        self._apply_wake.set()
        if self._apply_task is not None:
            deadline = time.monotonic() + 30
            while self._unapplied and time.monotonic() < deadline:
                try:
                    await self._apply_now()
                except Exception:
                    await asyncio.sleep(0.2)
            self._apply_task.cancel()
        if not self._unapplied and self.journal.size:
            self.journal.truncate()
        self.syncer.close()
        self._apply_exec.shutdown(wait=True)


def _requarantined() -> Exception:
    return StorageError(
        "the engine set aside an earlier write the database refused (see `musubi engine status`, "
        "quarantine) and reloaded its state, so this one was not applied; retry it.",
        code="write_failed",
    )


def _poisoned() -> Exception:
    return StorageError(
        "an earlier write in the same group commit failed, so this one was not applied; retry it.",
        code="write_failed",
    )
