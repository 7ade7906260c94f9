"""What a running job's code sees: :class:`JobHandle`.

A runner (``async def runner(h: JobHandle) -> dict | None``) reads its
``params`` and the last committed checkpoint (``last_checkpoint``) (None on a first run), reports
``progress``, queues its own mutations with ``write`` and commits them together
with a new checkpoint with ``await checkpoint(data)``: one group commit, so after
a crash the checkpoint names exactly the work that is in the database, and a
resumed run starts from it without redoing any of that work.  Writes queued
after the last checkpoint are dropped if the job fails or is cancelled, and
committed with the final state when it finishes.

Cancellation is cooperative first (``cancelled`` is set; check it between
steps, or call ``raise_if_cancelled``, also from a worker thread via
``is_cancelled``) and forced second: the job's task is cancelled at once, so a
runner that ignores the flag stops at its next ``await`` (``CancelledError``;
clean up in ``finally`` and let it propagate).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from core.storage.base import Mutation

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.jobs.model import Job
    from core.jobs.service import JobService

MAX_CHECKPOINT_BYTES = 1 << 20  # a checkpoint names where to resume, not the work itself


class JobHandle:
    """One running attempt of one job (a new handle per attempt)."""

    def __init__(self, service: JobService, job: Job) -> None:
        self._svc = service
        self._job = job
        self.cancelled = asyncio.Event()
        self._pending: list[Mutation] = []
        self._loop = asyncio.get_running_loop()

    # -- what the job is --------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def kind(self) -> str:
        return self._job.kind

    @property
    def tenant(self) -> str:
        return self._job.tenant

    @property
    def project(self) -> str | None:
        return self._job.project

    @property
    def created_by(self) -> str:
        return self._job.created_by

    @property
    def params(self) -> dict[str, Any]:
        """What the job was asked to do (checked by its kind's ``check_params`` when it was started)."""
        return self._job.params

    @property
    def last_checkpoint(self) -> dict[str, Any] | None:
        """The last committed checkpoint: where to resume (None: start from the beginning)."""
        return self._job.checkpoint

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 after the first resume, ..."""
        return self._job.attempts

    @property
    def engine(self) -> OpRunner:
        """The engine, for reads (``engine.read``) and its state; write through :meth:`write`."""
        return self._svc.e

    @property
    def is_cancelled(self) -> bool:
        """Cancel was asked (safe to read from a worker thread)."""
        return self.cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        """Stop here if cancel was asked."""
        if self.cancelled.is_set():
            raise asyncio.CancelledError(f"job {self.id} was cancelled")

    # -- reporting and writing --------------------------------------------------------------

    def progress(self, done: int, total: int | None = None, unit: str | None = None) -> None:
        """``done`` units of ``total`` (None: keep the last total); events are coalesced (≤ 4/s).

        May be called from a worker thread too (it is then handed to the event loop).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: the job's state belongs to the loop
            self._loop.call_soon_threadsafe(self.progress, done, total, unit)
            return
        if isinstance(done, bool) or not isinstance(done, int) or done < 0:
            raise ValueError(f"progress done must be a whole number >= 0, not {done!r}")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ValueError(f"progress total must be a whole number >= 0 or None, not {total!r}")
        job = self._job
        job.done = done
        if total is not None:
            job.total = total
        if unit:
            job.unit = unit[:40]
        self._svc.progressed(job)

    def note(self, message: str | None) -> None:
        """Say what the job waits for now (``progress.message`` in the API and its ``job.progress`` events,
        e.g. "waiting for ..."); None clears it.  Live only: not persisted, gone when the job ends."""
        job = self._job
        if message == job.message:
            return
        job.message = message[:200] if message else None
        self._svc.progressed(job)

    def write(self, *mutations: Mutation) -> None:
        """Queue mutations; they are committed with the next :meth:`checkpoint` (or the job's finish)."""
        self._pending.extend(mutations)

    def take_pending(self) -> list[Mutation]:
        out, self._pending = self._pending, []
        return out

    async def checkpoint(self, data: dict[str, Any]) -> None:
        """Commit the queued writes, ``data`` as the new checkpoint and the progress, in one group.

        Returns once that group is durable.  ``data`` must be JSON (at most 1 MiB of it).
        """
        try:
            text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a job checkpoint must be JSON: {exc}") from None
        if len(text) > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"a job checkpoint must stay under {MAX_CHECKPOINT_BYTES:,} bytes; it is {len(text):,}")
        await self._svc.commit_checkpoint(self, json.loads(text))
