"""The code index inside the engine: the ``index`` job, index status and hybrid search (light).

Where the work happens (docs/search.md#indexing):

- the walk, hashing and chunking run in a helper process (``core/rag/prep.py``), so the engine's
  loop never parses a file;
- embeddings and the FAISS index live in the embedding worker (``core/rag/worker.py``, through
  :class:`core.rag.worker_client.WorkerClient`);
- the lexical (BM25) index of each project is built and queried in a second helper process
  that keeps it loaded;
- chunk rows go through the engine's group commit (``code_files``, ``code_chunks``,
  ``code_indexes``), committed with the job's checkpoints, in bulk (docs/schema.md).

Only this module's own bookkeeping (a few numbers per project) runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from core.audit import format_ts
from core.errors import BadRequest, MusubiError, NotFound
from core.storage.base import Delete, Insert, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.jobs import JobHandle
    from core.jobs.service import JobService
    from core.rag.worker_client import WorkerClient

log = logging.getLogger("musubi.rag.index")

KIND = "index"
FILES_PER_COMMIT = 200  # files chunked and committed per group in the file phase
EMBED_REQUEST = 256  # chunks per worker request (two in flight, so the worker never waits)
SAVE_CHUNKS = 4096  # a batch: FAISS saved and the chunks marked dense in one commit ...
SAVE_SECONDS = 20.0  # ... after this many chunks or seconds, whichever comes first
MAX_FILE_BYTES = 1 << 20  # files above this are not indexed (MUSUBI_INDEX_MAX_BYTES overrides)
CANDIDATES = 100  # dense and lexical candidates fused per query
FAKE_ENV = "MUSUBI_TEST_FAKE_EMBEDDER"  # test hook: a FakeEmbedder of this dimension in the worker
MAX_GLOB = 1000
PERSIST_DELAY_S = 5.0  # an updated lexical state is written once no update came for this long
WAITING_FOR_SWITCH = "waiting for the embedder re-embed to finish (an activation is switching the search model)"


class NotIndexed(MusubiError):
    """Search before the project's first index (HTTP 400, exit 1): the message says to run ``musubi index``."""

    code = "not_indexed"
    http_status = 400


class Hit(TypedDict):
    """One search result (the contract of ``POST /v1/search``)."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    language: str
    score: float
    snippet: str


def check_glob(glob: str | None) -> str | None:
    """A ``--path`` filter: a relative glob over POSIX paths; BadRequest naming the problem otherwise."""
    if glob is None:
        return None
    problem = None
    if not glob.strip():
        problem = "is empty"
    elif len(glob) > MAX_GLOB:
        problem = f"is longer than {MAX_GLOB} characters"
    elif glob.startswith("/") or "\\" in glob or "\0" in glob:
        problem = "must be relative to the project root, with / between folders"
    elif ".." in glob.split("/"):
        problem = "must not contain '..'"
    elif glob.count("[") != glob.count("]"):
        problem = "has an unclosed [ ]"
    if problem:
        raise BadRequest(f"path filter {glob!r} {problem}; use a glob such as 'core/**/*.py' or '*.md'.", field="path")
    return glob


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    force = params.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force must be true or false.", field="force")
    return {"force": force}


class IndexService:
    """Per tenant and project: the index job, the status and the search (``engine.code_index``)."""

    def __init__(self, runner: OpRunner, jobs: JobService) -> None:
        self.e = runner
        self.jobs = jobs
        jobs.register(KIND, self._run, permission="index.build", check_params=_check_params, api=False)
        self._worker: WorkerClient | None = None
        self._prep: ProcessPoolExecutor | None = None
        self._lex: ProcessPoolExecutor | None = None
        self._info: dict[tuple[str, str], dict[str, Any]] = {}
        self._dense_broken: set[tuple[str, str]] = set()
        self._lex_ready: dict[tuple[str, str], bool] = {}
        self._persisting: set[asyncio.Future[Any]] = set()  # lexical generations being written (prep.lex_persist)
        self._persist_due: dict[str, asyncio.TimerHandle] = {}  # lexical folder -> its pending write
        # -- local embedder (issue 19): which vector folder and model serve a project (core/tune/service.py)
        self.serving: Any = None  # async (tenant, project) -> (vector folder name, model folder or None)
        # Held by an index job for its whole run and by an embedder activation around its last catch-up and
        # its switch: an index job chooses its vector folder only when no switch is under way (core/tune).
        self._vector_locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- helpers and their processes --------------------------------------------------------

    @property
    def worker(self) -> WorkerClient:
        if self._worker is None:
            from core.config import env, load_config
            from core.rag.worker_client import WorkerClient

            try:
                settings = load_config(check_models=False).search
            except MusubiError:
                settings = None  # a bad config.toml is reported by the commands that read it
            fake = int(env(FAKE_ENV) or 0)
            # The extracted model lives in the user's cache, shared by every home (core.paths.default_cache_dir).
            self._worker = WorkerClient(settings, log_path=self.e.paths.logs / "search-worker.log", fake_dim=fake)
        return self._worker

    @staticmethod
    def _pool() -> ProcessPoolExecutor:
        import multiprocessing

        # spawn: a fork of the engine would copy its threads' locks and its open database.
        from core.rag.prep import watch_parent

        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=watch_parent, initargs=(os.getpid(),))

    async def _in(self, which: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the helper process ``which`` ("prep" or "lex"); a dead helper is replaced once."""
        from concurrent.futures.process import BrokenProcessPool

        for attempt in (1, 2):
            pool = getattr(self, f"_{which}")
            if pool is None:
                pool = self._pool()
                setattr(self, f"_{which}", pool)
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
            except BrokenProcessPool:
                setattr(self, f"_{which}", None)
                pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise MusubiError(f"the search helper process ({which}) died twice; see logs/engine.log.",
                                      code="search_helper_failed") from None
                log.warning("search helper process (%s) died; starting a new one", which)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Engine stop: write pending lexical states, stop the worker and the helper processes."""
        from core.rag import prep

        for lex_dir, handle in list(self._persist_due.items()):
            handle.cancel()
            with contextlib.suppress(Exception):  # only a cache: a failure costs a rebuild at the next start
                await asyncio.wait_for(self._in("lex", prep.lex_persist, lex_dir), 30)
        self._persist_due.clear()
        if self._worker is not None:
            await self._worker.close()
        for pool in (self._prep, self._lex):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def folder(self, tenant: str, project: str) -> Path:
        """The project's index files: ``$MUSUBI_HOME/tenants/<tenant>/code/<project>/``."""
        return self.e.tenant_dir(tenant) / "code" / project

    async def vectors(self, tenant: str, project: str) -> tuple[Path, str | None]:
        """The vector folder that serves the project and the model folder its vectors need (None: the
        worker's own model); the worker client is told, so every request on the folder names that model."""
        name, model = await self.serving(tenant, project) if self.serving is not None else ("vectors", None)
        vec = self.folder(tenant, project) / name
        self.worker.bind(vec, model)
        return vec, model

    def vectors_lock(self, tenant: str, project: str) -> asyncio.Lock:
        """The project's lock on which vector folder serves: an index job holds it from before it chooses
        its folder (:meth:`vectors`) until it ends, an activation while it catches up and switches, so no
        index job writes a folder that stops serving under it (docs/finetune.md)."""
        return self._vector_locks.setdefault((tenant, project), asyncio.Lock())

    # -- per-project state ------------------------------------------------------------------

    async def info(self, tenant: str, project: str) -> dict[str, Any] | None:
        """The project's ``code_indexes`` row (cached; the job keeps it current), None when never indexed."""
        key = (tenant, project)
        if key not in self._info:
            row = await self.e.read(self.e.storage.code_index, tenant, project)
            if row is None:
                return None
            self._info.setdefault(key, row)
        return self._info[key]

    def _active_job(self, tenant: str, project: str) -> Any:
        for j in self.jobs.jobs.values():
            if j.kind == KIND and j.tenant == tenant and j.project == project and j.state in (
                    "queued", "running", "cancelling"):
                return j
        return None

    async def status(self, tenant: str, project: str | None) -> dict[str, Any]:
        """``GET /v1/index/status``: files, chunks, dense coverage, model, last update, the current job."""
        root = self.e.state.projects.get(tenant, {}).get(project or "", {}).get("path") if project else None
        out: dict[str, Any] = {"project": project, "root": root, "state": "none", "files": 0, "chunks": 0,
                               "dense_chunks": 0, "dense_coverage": 0.0, "model": None, "updated_at": None,
                               "job": None}
        if project is None:
            return out
        job = self._active_job(tenant, project)
        info = await self.info(tenant, project)
        last = job or max((j for j in self.jobs.jobs.values() if j.kind == KIND and j.tenant == tenant
                           and j.project == project), key=lambda j: j.created_at, default=None)
        if info is not None:
            out.update(files=info["files"], chunks=info["chunks"], dense_chunks=info["dense_chunks"],
                       dense_coverage=_coverage(info), model=info["model_id"],
                       updated_at=format_ts(info["updated_at"]) if info["updated_at"] else None, state="ready")
            if info["state"] == "indexing" or (tenant, project) in self._dense_broken:
                out["state"] = "stale"  # a run stopped half-way, or the vector index must be rebuilt
            elif job is None and root is not None and await self._files_changed(tenant, project, root):
                out["state"] = "stale"  # files added, deleted or edited since the last index
        if last is not None:
            out["job"] = last.as_json(self.e.now())
            if job is not None:
                out["state"] = "indexing"
            elif last.state == "failed":
                out["state"] = "failed"
        return out

    async def _files_changed(self, tenant: str, project: str, root: str) -> bool:
        """Whether the project's files differ from the last index's scan (a thread: stats, maybe a hash)."""
        from core.rag import snapshot

        n = await asyncio.to_thread(snapshot.changed, root, self.folder(tenant, project) / snapshot.FILE)
        return bool(n)

    # -- search -----------------------------------------------------------------------------

    async def search(self, tenant: str, project: str, query: str, k: int = 10,
                     filters: dict[str, str | None] | None = None) -> list[Hit]:
        """The ``k`` best chunks of the project for ``query`` (hybrid), for other features (context packs).

        ``filters``: ``path`` (a glob, checked with :func:`check_glob`) and ``lang``.  Raises
        NotFound-like ``not_indexed`` when the project has no index yet.
        """
        return (await self.answer(tenant, project, query, k, filters))["results"]

    async def answer(self, tenant: str, project: str, query: str, k: int = 10,
                     filters: dict[str, str | None] | None = None) -> dict[str, Any]:
        """The whole ``POST /v1/search`` answer: results, dense coverage, whether it is complete, time taken."""
        from core.rag import prep
        from core.rag.fusion import fuse, weights_for
        from core.rag.represent import query_text

        t0 = time.perf_counter()
        glob = check_glob((filters or {}).get("path"))
        lang = (filters or {}).get("lang")
        if not query.strip():
            raise BadRequest("the query is empty; search for words, e.g. musubi search \"parse the config\".",
                             field="query")
        info = await self.info(tenant, project)
        if info is None or info["next_id"] == 0:
            job = self._active_job(tenant, project)
            if job is not None:
                raise NotIndexed(f"project {project!r} is being indexed for the first time (job {job.id}); search "
                                 f"answers once its files are chunked. Follow it with: musubi jobs show {job.id} "
                                 "--follow")
            raise NotIndexed(f"project {project!r} is not indexed yet; index it with: musubi index")
        folder = self.folder(tenant, project)
        lex_dir = str(folder / "lexical")
        n = CANDIDATES if glob is None and lang is None else max(CANDIDATES, min(2000, k * 20))
        # No job running: the lexical index must be the chunk table's (a stale one, e.g. after a crash, is
        # rebuilt).  During a job's file phase the previous state answers (docs/search.md).
        expect = info["next_id"] if self._active_job(tenant, project) is None else None
        lexical_task = asyncio.ensure_future(self._in("lex", prep.lex_search, lex_dir, query, n, glob, lang,
                                                      expect))
        dense: list[tuple[int, float]] = []
        dense_ok = info["dense_chunks"] > 0 and (tenant, project) not in self._dense_broken
        if dense_ok:
            from core.rag.errors import IndexCorrupt

            try:
                vec, _model = await self.vectors(tenant, project)
                hits = await self.worker.search(vec, texts=[query_text(query)], k=n)
                dense = [(h.id, h.score) for h in hits[0]]
            except IndexCorrupt as exc:  # never served: lexical only until the next index job rebuilds it
                log.warning("vector index of %s/%s unusable (%s); answering lexically", tenant, project, exc.message)
                self._dense_broken.add((tenant, project))
                dense_ok = False
        lexical = await lexical_task
        if lexical is None:  # torn or missing: rebuilt from the chunk table
            await self._build_lexical(tenant, project)
            lexical = await self._in("lex", prep.lex_search, lex_dir, query, n, glob, lang) or []
        rows = await self._in("lex", prep.lex_rows, lex_dir, [i for i, _ in dense] + [i for i, _ in lexical], glob,
                              lang)
        dense = [(i, s) for i, s in dense if i in rows]
        w_dense, w_lexical = weights_for(query)  # a CJK query leans on BM25 (core/rag/fusion.py)
        fused = fuse(dense, lexical, w_dense=w_dense, w_lexical=w_lexical) if dense else lexical
        results: list[Hit] = []
        for cid, score in fused[:k]:
            path, start, end, symbol, language, snippet = rows[cid]
            results.append({"path": path, "start_line": start, "end_line": end, "symbol": symbol,
                            "language": language, "score": round(float(score), 6), "snippet": snippet})
        coverage = _coverage(info) if dense_ok else 0.0
        return {"query": query, "results": results, "dense_coverage": coverage,
                "complete": coverage >= 1.0 and self._active_job(tenant, project) is None,
                "took_ms": round((time.perf_counter() - t0) * 1000, 2)}

    async def _build_lexical(self, tenant: str, project: str) -> None:
        """Build the project's lexical index from every chunk row (the slow path; :meth:`_update_lexical`)."""
        from core.rag import prep

        info = await self.info(tenant, project)
        mark = info["next_id"] if info is not None else None  # read before the rows (see core.rag.lexstate)
        rows = await self.e.read(self.e.storage.code_chunk_rows, tenant, project)
        await self._in("lex", prep.lex_build, str(self.folder(tenant, project) / "lexical"), rows, mark)

    async def _update_lexical(self, tenant: str, project: str, mark: int) -> str:
        """Bring the lexical index to the chunk table at ``mark`` (next_id): an update if it can, else a build.

        Returns what was done: ``"none"``, ``"update"`` or ``"build"``.  After an update the new
        generation is written by a later request to the helper (a cache; docs/search.md).
        """
        from array import array

        from core.rag import prep

        lex_dir = str(self.folder(tenant, project) / "lexical")
        state = await self._in("lex", prep.lex_state, lex_dir)
        live = [r[0] for r in await self.e.read(self.e.storage.code_chunk_ids, tenant, project)]
        if state is not None and state["mark"] == mark and state["chunks"] == len(live):
            return "none"
        if state is not None and state["mark"] is not None and state["mark"] <= mark:
            added = [cid for cid in live if cid >= state["mark"]]
            rows = sorted(await self.e.read(self.e.storage.code_passages, tenant, project, added))
            got = await self._in("lex", prep.lex_update, lex_dir, state["mark"], array("q", live).tobytes(), rows,
                                 mark)
            if got is not None:
                self._persist_later(lex_dir)
                return "update"
        await self._build_lexical(tenant, project)
        return "build"

    def _persist_later(self, lex_dir: str) -> None:
        """Write the updated lexical state once edits pause (a later update moves the write on).

        Writing it right away would hold the ``lex`` helper ~0.5 s (more under load) when the next
        edit's job or a search needs it; until written, the files are only an older cache.
        """
        old = self._persist_due.pop(lex_dir, None)
        if old is not None:
            old.cancel()
        self._persist_due[lex_dir] = asyncio.get_running_loop().call_later(PERSIST_DELAY_S, self._persist_now,
                                                                           lex_dir)

    def _persist_now(self, lex_dir: str) -> None:
        from core.rag import prep

        self._persist_due.pop(lex_dir, None)
        task = asyncio.ensure_future(self._in("lex", prep.lex_persist, lex_dir))
        self._persisting.add(task)
        task.add_done_callback(self._persisted)

    def _persisted(self, task: asyncio.Future[Any]) -> None:
        self._persisting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("writing a lexical index failed (it is rebuilt when needed): %s", task.exception())

    # -- the job ----------------------------------------------------------------------------

    async def _run(self, h: JobHandle) -> dict[str, Any]:
        from core.rag.job import IndexRun

        lock = self.vectors_lock(h.tenant, h.project or "")
        if lock.locked():  # only an activation's catch-up and switch hold it while an index job can start
            h.note(WAITING_FOR_SWITCH)
        async with lock:  # waits for an embedder switch under way
            h.note(None)
            return await IndexRun(self, h).run()


def _coverage(info: dict[str, Any]) -> float:
    return 1.0 if not info["chunks"] else round(info["dense_chunks"] / info["chunks"], 4)


def index_row(tenant: str, project: str, root: str, now: Any) -> dict[str, Any]:
    """A new ``code_indexes`` row."""
    return {"tenant_id": tenant, "project": project, "root": root, "model_id": None, "files": 0, "chunks": 0,
            "dense_chunks": 0, "next_id": 0, "state": "indexing", "job_id": None, "error": None, "updated_at": now}


def chunk_row(tenant: str, project: str, cid: int, c: dict[str, Any]) -> dict[str, Any]:
    """A ``code_chunks`` row for chunk ``c`` (as :func:`core.rag.prep.chunk_files` returns it)."""
    return {"tenant_id": tenant, "project": project, "chunk_id": cid, **c, "dense": False}


def mark_dense(tenant: str, project: str, ids: Sequence[int]) -> Update:
    """One statement marking a batch of chunks embedded (docs/schema.md: the ``in`` form of a where)."""
    return Update("code_chunks", {"dense": True},
                  {"tenant_id": tenant, "project": project, "chunk_id": ("in", list(ids))})


def drop_file(tenant: str, project: str, path: str) -> list[Delete]:
    """Delete a file's row and its chunks."""
    return [Delete("code_chunks", {"tenant_id": tenant, "project": project, "path": path}),
            Delete("code_files", {"tenant_id": tenant, "project": project, "path": path})]


def file_row(tenant: str, project: str, path: str, sha: str, size: int, chunks: int, now: Any) -> Insert:
    return Insert("code_files", {"tenant_id": tenant, "project": project, "path": path, "sha256": sha, "size": size,
                                 "chunks": chunks, "indexed_at": now})


def not_found_project(tenant: str) -> NotFound:
    return NotFound(f"no project: run inside a registered project of tenant {tenant!r}, pass one with --project, "
                    "or register it with: musubi project add PATH", resource="project")
