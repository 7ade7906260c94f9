"""Make the journal durable without sharing the engine's GIL: ``fdatasync`` in a helper process.

Why a process, not a thread: the event loop thread is busy nearly all the time
under load, and a thread that has just come back from ``fdatasync`` must win the
GIL before it can wake the loop.  CPython hands the GIL over only when the loop
thread blocks or its 5 ms switch interval runs out, so acknowledgements waited
milliseconds, and the handovers themselves cost the loop thread as much CPU as
a request.  Measured with ``benchmarks/bench_engine_load.py --only "usage
record"``: the same engine acknowledged about a third more records a second
once the sync left the process.

The helper is a few lines of Python started with ``-I -S`` (no site, no user
paths).  It inherits the journal's file descriptor, so its ``fdatasync``
flushes exactly the bytes the engine wrote (durability is a property of the
file, not of the process that asks).  Protocol over two pipes: the engine
writes one byte per sync request, after the journal bytes it covers are
written; the helper reads whatever requests are waiting, syncs once for all of
them and answers one byte each, in order: 0 for done, or the ``errno``
(1..255) of a failed sync.  When the engine dies, the helper reads end-of-file
and exits; when the helper dies, pending syncs fail and the next one starts a
new helper.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import subprocess
import sys

log = logging.getLogger("musubi.engine.syncer")

_OK = 0
_HELPER = """
import os, sys
req, resp, fd = (int(a) for a in sys.argv[1:4])
while True:
    try:
        n = len(os.read(req, 65536))
    except InterruptedError:
        continue
    if not n:
        break
    try:
        os.fdatasync(fd)
        answer = bytes(n)
    except OSError as e:
        answer = bytes([min(max(e.errno or 5, 1), 255)]) * n
    try:
        os.write(resp, answer)
    except OSError:
        break
"""


class SyncHelper:
    """Runs ``fdatasync(fd)`` in a helper process on behalf of the event loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._proc: subprocess.Popen[bytes] | None = None
        self._req_w = -1
        self._resp_r = -1
        self._pending: collections.deque[asyncio.Future[None]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.syncs = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HELPER, str(req_r), str(resp_w), str(self.fd)],
                pass_fds=(req_r, resp_w, self.fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            for f in (req_r, req_w, resp_r, resp_w):
                os.close(f)
            raise
        os.close(req_r)
        os.close(resp_w)
        os.set_blocking(resp_r, False)
        self._req_w, self._resp_r, self._loop = req_w, resp_r, loop
        loop.add_reader(resp_r, self._answered)

    async def sync(self) -> None:
        """Return once every byte written to ``fd`` so far is durable; raise ``OSError`` if not."""
        if self._proc is None:
            self._spawn()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(fut)
        try:
            os.write(self._req_w, b"s")
        except OSError as exc:  # the helper is gone (EPIPE): start afresh next time
            self._pending.remove(fut)
            self._lost(f"could not reach it ({exc})")
            raise OSError(errno.EIO, "the journal's sync helper process is gone; the write was not made durable") from exc
        await fut
        self.syncs += 1

    def _answered(self) -> None:
        try:
            data = os.read(self._resp_r, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(f"its pipe failed ({exc})")
            return
        if not data:
            self._lost("it exited")
            return
        for b in data:
            if not self._pending:
                break
            fut = self._pending.popleft()
            if fut.done():
                continue
            if b == _OK:
                fut.set_result(None)
            else:
                fut.set_exception(OSError(b, f"fdatasync of the journal failed: {os.strerror(b)}"))

    def _lost(self, why: str) -> None:
        """The helper died: fail what waits on it; the next sync starts a new one."""
        log.error("the journal's sync helper process is gone: %s", why)
        self._teardown()
        while self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(OSError(errno.EIO, "the journal's sync helper process exited; the write was not made durable"))

    def _teardown(self) -> None:
        if self._loop is not None and self._resp_r >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._resp_r)
        for f in (self._req_w, self._resp_r):
            if f >= 0:
                with contextlib.suppress(OSError):
                    os.close(f)
        self._req_w = self._resp_r = -1
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(timeout=5)

    def close(self) -> None:
        """Stop the helper (closing its request pipe ends it)."""
        if self._req_w >= 0:
            with contextlib.suppress(OSError):
                os.close(self._req_w)
            self._req_w = -1
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._teardown()
