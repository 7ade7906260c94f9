"""The engine's asyncio client of the embedding worker process (light: no numpy, torch or faiss).

:class:`WorkerClient` starts ``python -m core.rag.worker`` on the first request, keeps it warm for
``[search] idle_s`` seconds after the last answer, then stops it (the worker saves unsaved indexes
on a clean stop).  Requests are pipelined over the worker's stdin/stdout (core/rag/frames.py) with
at most ``max_inflight`` outstanding; the worker answers them in order.  If the worker dies (killed,
crashed, or it sent a frame that does not decode) every outstanding request is retried once on a
fresh worker; a second failure is a :class:`~core.rag.errors.WorkerFailed` naming the log file.
Nothing here blocks the event loop: the pipe is asyncio's, and the model loads in the other process.

A restart loses vector changes since the last ``save`` of an index; :attr:`WorkerClient.restarts`
counts restarts so an index job can tell it must re-add from its last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import SearchSettings
from core.errors import MusubiError
from core.rag import frames
from core.rag.errors import IndexCorrupt, ModelUnavailable, WorkerFailed, WorkerRequestError

log = logging.getLogger("musubi.rag.client")

__all__ = ["EmbedResult", "Hit", "WorkerClient"]

_ERRORS: dict[str, type[MusubiError]] = {
    "index_corrupt": IndexCorrupt,
    "model_unavailable": ModelUnavailable,
}


class _WorkerDied(Exception):
    """The worker process ended (or broke the protocol) while requests were outstanding."""

    proc: asyncio.subprocess.Process | None = None
    """The worker that died while starting (its request had no process to name yet)."""


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """``n`` rows of ``dim`` float32 values, row-major, L2-normalised, as raw bytes."""

    n: int
    dim: int
    data: bytes

    def rows(self) -> list[array[float]]:
        """The vectors as ``array('f')`` rows (for callers without numpy)."""
        flat = array("f")
        flat.frombytes(self.data)
        return [flat[i * self.dim:(i + 1) * self.dim] for i in range(self.n)]


@dataclass(frozen=True, slots=True)
class Hit:
    """One dense search hit: the chunk id and its cosine similarity."""

    id: int
    score: float


def _ids_bytes(ids: Sequence[int]) -> bytes:
    return array("q", ids).tobytes()


class WorkerClient:
    """Start-on-demand, idle-stopped, self-restarting client of the embedding worker (one per engine)."""

    def __init__(self, settings: SearchSettings | None = None, *, log_path: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str] | None = None, fake_dim: int = 0,
                 python: str = sys.executable, start_timeout_s: float = 300.0) -> None:
        """``log_path`` receives the worker's stderr; ``fake_dim`` > 0 runs a FakeEmbedder (plumbing tests)."""
        self.settings = settings or SearchSettings()
        self.log_path = Path(log_path)
        self.cache_dir = cache_dir
        self.fake_dim = fake_dim
        self.python = python
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        """Workers that died unexpectedly (killed, crashed, broke the protocol); idle stops do not count."""
        self.info: dict[str, Any] = {}
        """The worker's ``hello`` answer: pid, model_id, dim, device, threads, batch."""
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(self.settings.max_inflight)
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False
        self._busy = 0
        self._models: dict[str, str] = {}  # index folder -> the model folder its vectors are made with

    def bind(self, folder: str | os.PathLike[str], model: str | None) -> None:
        """Every later request on index ``folder`` names ``model`` (a tuned embedder's folder; None: the default)."""
        if model is None:
            self._models.pop(_abs(folder), None)
        else:
            self._models[_abs(folder)] = model

    # -- process lifecycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A worker process is up (it may still be loading the model)."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def _argv(self) -> list[str]:
        s = self.settings
        argv = [self.python, "-m", "core.rag.worker", "--device", s.device, "--threads", str(s.threads),
                "--batch", str(s.batch)]
        if s.nice:
            argv += ["--nice", str(s.nice)]
        if s.model:
            argv += ["--model", s.model]
        if self.cache_dir:
            argv += ["--cache-dir", str(self.cache_dir)]
        if self.fake_dim:
            argv += ["--fake", str(self.fake_dim)]
        return argv

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The worker imports this same core package, wherever it was imported from.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        return env

    async def _ensure_started(self) -> asyncio.subprocess.Process:
        """The running worker, started first when there is none (under the lock an idle stop also holds)."""
        if self._closed:
            raise WorkerFailed("the search worker client is stopped (the engine is shutting down).")
        async with self._start_lock:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            if self._proc is not None:  # it exited on its own (stops clear _proc): count it, collect it
                self.restarts += 1
                await self._kill()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as errlog:  # the child keeps its own descriptor
                proc = await asyncio.create_subprocess_exec(
                    *self._argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=errlog, env=self._env(), start_new_session=True)
            self._proc = proc
            self._reader_task = asyncio.create_task(self._read_loop(proc), name="rag-worker-reader")
            try:
                self.info = await asyncio.wait_for(self._send({"op": "hello"}, proc), self.start_timeout_s)
            except TimeoutError:
                await self._kill()
                raise WorkerFailed(f"the search worker did not start within {self.start_timeout_s:.0f}s; "
                                   f"see its log {self.log_path}.", log=str(self.log_path)) from None
            except MusubiError:  # it cannot load its model: a retry would fail the same way
                await self._kill()
                raise
            except _WorkerDied as exc:  # the caller reaps it and counts the restart
                exc.proc = proc
                raise
            log.info("search worker %s started: %s", proc.pid, self.info)
            return proc

    async def _read_loop(self, proc: asyncio.subprocess.Process) -> None:
        """Route answers to their waiters; on EOF or a broken frame fail everything outstanding."""
        assert proc.stdout is not None
        reason: BaseException = _WorkerDied("the worker closed its output")
        try:
            while True:
                header = await proc.stdout.readexactly(frames.HEADER.size)
                body = await proc.stdout.readexactly(frames.frame_length(header))
                msg = frames.decode(body)
                rid = msg.get("id")
                if rid == 0 and not msg.get("ok"):  # the worker could not load its model: no point retrying
                    err = msg.get("error") or {}
                    reason = _error(err)
                    break
                fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
                if fut is None:
                    reason = _WorkerDied(f"the worker answered an unknown request: {str(msg)[:200]}")
                    break
                if not fut.done():
                    fut.set_result(msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except frames.FrameError as exc:
            reason = _WorkerDied(f"the worker sent a bad frame ({exc})")
        if proc.returncode is None:  # a protocol error: this worker is not trusted any more
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(reason)
        self._pending.clear()

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
            self._reader_task = None

    async def stop(self, timeout_s: float = 30.0, *, only_if_idle: bool = False) -> None:
        """Stop the worker cleanly (it saves unsaved indexes), killing it after ``timeout_s``."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        async with self._start_lock:  # no request can start a worker (or find this one) meanwhile
            if only_if_idle and self._busy:
                return
            proc = self._proc
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(TimeoutError, _WorkerDied, MusubiError):
                    await asyncio.wait_for(self._send({"op": "shutdown"}, proc), timeout_s)
                    await asyncio.wait_for(proc.wait(), timeout_s)
                log.info("search worker %s stopped", proc.pid)
            await self._kill()

    async def close(self) -> None:
        """Stop the worker and refuse further requests (engine shutdown)."""
        self._closed = True
        await self.stop()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._busy == 0 and self.running:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(self.settings.idle_s, self._idle_stop)

    def _idle_stop(self) -> None:
        self._idle = None
        if self._busy == 0:
            task = asyncio.get_running_loop().create_task(self.stop(only_if_idle=True), name="rag-worker-idle-stop")
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    # -- requests ---------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any], proc: asyncio.subprocess.Process | None) -> dict[str, Any]:
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise _WorkerDied("the worker is not running")
        if self._reader_task is None or self._reader_task.done():  # died while idle: nobody would answer
            raise _WorkerDied("the worker's output is closed")
        rid = next(self._ids)
        try:
            frame = frames.encode({**message, "id": rid})
        except frames.FrameError as exc:
            raise WorkerRequestError(f"the request is too large for the worker ({exc}); send smaller batches.") \
                from None
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            async with self._write_lock:
                proc.stdin.write(frame)
                await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(rid, None)
            raise _WorkerDied(f"cannot write to the worker ({exc})") from None
        msg = await fut
        if not msg.get("ok"):
            raise _error(msg.get("error") or {})
        result: dict[str, Any] = msg.get("result") or {}
        return result

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one operation (see core/rag/worker.py), starting or restarting the worker as needed."""
        async with self._slots:
            self._busy += 1
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            try:
                for attempt in (1, 2):
                    proc = None
                    try:
                        proc = await self._ensure_started()
                        model = self._models.get(args["dir"]) if isinstance(args.get("dir"), str) else None
                        extra = {"model": model} if model is not None and "model" not in args else {}
                        return await self._send({"op": op, **args, **extra}, proc)
                    except _WorkerDied as exc:
                        await self._reap(proc or exc.proc)
                        if attempt == 2:
                            raise WorkerFailed(
                                f"the search worker died twice while answering {op!r} ({exc}); see its log "
                                f"{self.log_path}.", log=str(self.log_path)) from None
                        log.warning("search worker died during %r (%s); restarting it", op, exc)
                raise AssertionError("unreachable")
            finally:
                self._busy -= 1
                self._arm_idle()

    async def _reap(self, proc: asyncio.subprocess.Process | None) -> None:
        """Forget the dead worker ``proc`` once, however many requests noticed it (never its successor)."""
        async with self._start_lock:
            if proc is not None and self._proc is proc:
                self.restarts += 1
                await self._kill()

    # -- typed helpers ----------------------------------------------------------------------

    async def hello(self, model: str | None = None) -> dict[str, Any]:
        """Start the worker if needed; its model id, dimension, device, threads and batch size (of ``model``,
        a tuned embedder's folder, when given: loading it on first use)."""
        if model is not None:
            return await self.request("hello", model=model)
        self.info = await self.request("hello")
        return self.info

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> EmbedResult:
        """Normalised float32 embeddings of ``texts`` (raw bytes; ``np.frombuffer`` reads them)."""
        r = await self.request("embed", texts=list(texts), query=query)
        return EmbedResult(int(r["n"]), int(r["dim"]), bytes(r["vecs"]))

    async def tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-piece counts of ``texts`` with the model's tokenizer."""
        r = await self.request("tokens", texts=list(texts))
        return [int(c) for c in r["counts"]]

    async def open_index(self, folder: str | os.PathLike[str], *, create: bool = True) -> dict[str, Any]:
        """Open (or create) the index of ``folder``; raises IndexCorrupt when the saved one is unusable."""
        return await self.request("vec_open", dir=_abs(folder), create=create)

    async def stat(self, folder: str | os.PathLike[str]) -> dict[str, Any]:
        """exists, count, dirty, model_id, dim of an index (count 0 when it is not open in the worker)."""
        return await self.request("vec_stat", dir=_abs(folder))

    async def add(self, folder: str | os.PathLike[str], ids: Sequence[int], *, texts: Sequence[str] | None = None,
                  vecs: bytes | None = None) -> dict[str, Any]:
        """Embed ``texts`` (or take raw ``vecs``) and add/replace them under ``ids``; returns added, count."""
        if (texts is None) == (vecs is None):
            raise WorkerRequestError("add() takes exactly one of texts= or vecs=.")
        if texts is not None and len(texts) != len(ids):
            raise WorkerRequestError(f"add() got {len(ids)} ids for {len(texts)} texts.")
        payload: dict[str, Any] = {"texts": list(texts)} if texts is not None else {"vecs": vecs}
        return await self.request("vec_add", dir=_abs(folder), ids=_ids_bytes(ids), **payload)

    async def remove(self, folder: str | os.PathLike[str], ids: Sequence[int]) -> dict[str, Any]:
        """Remove ``ids`` (absent ones ignored); returns removed, count."""
        return await self.request("vec_remove", dir=_abs(folder), ids=_ids_bytes(ids))

    async def ids(self, folder: str | os.PathLike[str]) -> list[int]:
        """Every id in the index of ``folder``, ascending (an activation drops those of deleted chunks)."""
        r = await self.request("vec_ids", dir=_abs(folder))
        found = array("q")
        found.frombytes(r["ids"])
        return list(found)

    async def get(self, folder: str | os.PathLike[str], ids: Sequence[int]) -> tuple[list[int], EmbedResult]:
        """The stored vectors of those ``ids`` that are present (reuse an embedding under a new id)."""
        r = await self.request("vec_get", dir=_abs(folder), ids=_ids_bytes(ids))
        found = array("q")
        found.frombytes(r["ids"])
        data = bytes(r["vecs"])
        dim = len(data) // (4 * len(found)) if found else int(self.info.get("dim") or 0)
        return list(found), EmbedResult(len(found), dim, data)

    async def search(self, folder: str | os.PathLike[str], *, texts: Sequence[str] | None = None,
                     vecs: bytes | None = None, k: int = 10) -> list[list[Hit]]:
        """Top-``k`` hits per query (texts are embedded as queries in the worker), best first."""
        if (texts is None) == (vecs is None):
            raise WorkerRequestError("search() takes exactly one of texts= or vecs=.")
        payload: dict[str, Any] = {"texts": list(texts)} if texts is not None else {"vecs": vecs}
        r = await self.request("vec_search", dir=_abs(folder), k=k, **payload)
        scores, ids = array("f"), array("q")
        scores.frombytes(r["scores"])
        ids.frombytes(r["ids"])
        n, kk = int(r["n"]), int(r["k"])
        return [[Hit(ids[i * kk + j], scores[i * kk + j]) for j in range(kk) if ids[i * kk + j] >= 0]
                for i in range(n)]

    async def save(self, folder: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the index atomically; returns its manifest."""
        return await self.request("vec_save", dir=_abs(folder))

    async def reset(self, folder: str | os.PathLike[str]) -> dict[str, Any]:
        """Start the index over, empty (a rebuild after IndexCorrupt or a model change); saved on save()."""
        return await self.request("vec_reset", dir=_abs(folder))

    async def close_index(self, folder: str | os.PathLike[str], *, save: bool = True) -> bool:
        """Forget the index in the worker (saving unsaved changes unless ``save`` is False)."""
        return bool((await self.request("vec_close", dir=_abs(folder), save=save))["saved"])


def _abs(folder: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(folder))


def _error(err: dict[str, Any]) -> MusubiError:
    code = str(err.get("code") or "worker_error")
    message = str(err.get("message") or "the search worker refused the request")
    extra = {k: v for k, v in err.items() if k not in ("code", "message")}
    cls = _ERRORS.get(code, WorkerRequestError if code.startswith(("bad_", "search_worker_request")) else WorkerFailed)
    return cls(message, code=code, **extra)
