"""One run of the ``index`` job (light; the heavy steps run in helper processes and the worker).

Phases (docs/search.md#indexing):

1. **Open** the project's vector index in the worker.  A torn file, one made with another model,
   or one holding fewer vectors than the chunk table says (a crash before its save) is reset and
   every chunk marked not embedded: it is rebuilt from the chunk table, never served.
2. **Scan**: the walk and the hash of every file (helper process); files whose hash equals the
   stored one are left alone, new and changed ones are chunked, deleted ones leave the index.
3. **Files**: per 200 files, their old rows are deleted and the new file and chunk rows written
   with fresh chunk ids (never reused), committed with a checkpoint.  Then the lexical index is
   rebuilt, so lexical search covers the new code at once.
4. **Embed**: chunks not yet embedded, in id order.  A chunk whose hash has a vector already
   (unchanged code in an edited file, moved code, a branch switched back) gets that vector copied
   (``vec_get``/``vec_add`` in the worker, no model call); the others are embedded.  Per batch
   (4096 chunks or 20 s) the FAISS index is saved atomically, then the chunks are marked
   ``dense`` and the checkpoint committed together.  If the worker restarted during a batch, its
   unsaved additions are gone, so the batch is done again before it is committed.

After ``kill -9`` of the engine the job resumes: committed file batches are "unchanged" at the
next scan, committed embed batches are ``dense``; only uncommitted work is redone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import env
from core.errors import MusubiError, NotFound
from core.rag import prep
from core.rag.service import (
    EMBED_REQUEST,
    FILES_PER_COMMIT,
    MAX_FILE_BYTES,
    SAVE_CHUNKS,
    SAVE_SECONDS,
    chunk_row,
    drop_file,
    file_row,
    index_row,
    mark_dense,
    not_found_project,
)
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.jobs import JobHandle
    from core.rag.service import IndexService

log = logging.getLogger("musubi.rag.index")
# Test hooks (docs/search.md#test-hooks): chunks per batch, and a pause before each batch's save
# so that tests can kill the engine or the worker in the middle of a batch.
BATCH_ENV, DELAY_ENV = "MUSUBI_TEST_INDEX_BATCH", "MUSUBI_TEST_INDEX_DELAY_S"
MAX_REDO = 3  # a batch redone after this many worker restarts in a row fails the job


class IndexRun:
    """State of one run; :meth:`run` is the job's runner."""

    def __init__(self, svc: IndexService, h: JobHandle) -> None:
        self.svc, self.h, self.e = svc, h, svc.e
        if h.project is None:
            raise not_found_project(h.tenant)
        self.t, self.p = h.tenant, h.project
        self.vec: Path = svc.folder(self.t, self.p) / "vectors"  # set by run(): the serving model's folder
        self.model: str | None = None
        self.batch_chunks = int(env(BATCH_ENV) or SAVE_CHUNKS)
        self.delay_s = float(env(DELAY_ENV) or 0)
        self.t_scan = self.t_chunk = 0.0
        self.stats: dict[str, Any] = {"files": 0, "changed": 0, "deleted": 0, "skipped": 0, "chunks": 0,
                                      "embedded": 0, "reused": 0, "dense_before": 0, "rebuilt": False}

    async def _read(self, name: str, *args: Any) -> Any:
        return await self.e.read(getattr(self.e.storage, name), self.t, self.p, *args)

    def _index_update(self, **values: Any) -> Update:
        return Update("code_indexes", {**values, "updated_at": self.e.now()}, {"tenant_id": self.t, "project": self.p})

    async def run(self) -> dict[str, Any]:
        h, svc = self.h, self.svc
        project = self.e.state.projects.get(self.t, {}).get(self.p)
        if project is None:
            raise NotFound(f"project {self.p!r} was removed from tenant {self.t!r}; nothing to index.")
        root = project["path"]
        if not Path(root).is_dir():
            raise NotFound(f"the folder of project {self.p!r}, {root}, is gone; restore it or register the "
                           "project again with: musubi project add PATH")
        info = await svc.info(self.t, self.p)
        if info is None:
            info = index_row(self.t, self.p, root, self.e.now())
            h.write(Insert("code_indexes", dict(info)))
            await h.checkpoint({"phase": "open"})
            svc._info[(self.t, self.p)] = info
        self.vec, self.model = await svc.vectors(self.t, self.p)  # a tuned embedder's once one is active (core/tune)
        hello = await svc.worker.hello(self.model)
        await self._open(info, str(hello["model_id"]))
        h.write(self._index_update(state="indexing", job_id=h.id, root=root))
        t0 = time.monotonic()
        keys = await self._read("code_chunk_keys")  # [(id, path, hash, dense)] before this run changes them
        await self._files(info, root, keys)
        t1 = time.monotonic()
        await self._embed(info, keys)
        self.stats["seconds"] = {"files": round(self.t_scan - t0, 3), "chunk": round(self.t_chunk - self.t_scan, 3),
                                 "lexical": round(t1 - self.t_chunk, 3), "embed": round(time.monotonic() - t1, 3)}
        h.write(self._index_update(state="ready", error=None))
        await h.checkpoint({"phase": "done"})
        info["state"] = "ready"
        svc._dense_broken.discard((self.t, self.p))
        self.stats["chunks"] = info["chunks"]
        return self.stats

    # -- 1. open ---------------------------------------------------------------------------

    async def _open(self, info: dict[str, Any], model: str) -> None:
        from core.rag.errors import IndexCorrupt

        why = "asked (--force)" if self.h.params.get("force") else None
        try:
            stat = await self.svc.worker.open_index(self.vec)
            if why is None and info["model_id"] not in (None, model):
                why = f"the index was built with {info['model_id']}, the worker runs {model}"
            elif why is None and int(stat["count"]) < info["dense_chunks"]:
                why = f"it holds {stat['count']} vectors, the chunk table says {info['dense_chunks']} are embedded"
        except IndexCorrupt as exc:
            why = exc.message
        if why is None:
            if info["model_id"] is None:
                self.h.write(self._index_update(model_id=model))
                info["model_id"] = model
            return
        log.warning("rebuilding the vector index of %s/%s: %s", self.t, self.p, why)
        await self.svc.worker.reset(self.vec)
        await self.svc.worker.save(self.vec)
        self.h.write(Update("code_chunks", {"dense": False}, {"tenant_id": self.t, "project": self.p}),
                     self._index_update(model_id=model, dense_chunks=0))
        await self.h.checkpoint({"phase": "open", "rebuilt": why})
        info.update(model_id=model, dense_chunks=0)
        self.stats["rebuilt"] = True

    # -- 2 and 3. scan and files -----------------------------------------------------------

    async def _files(self, info: dict[str, Any], root: str, keys: list[tuple[int, str, str, bool]]) -> None:
        h, svc = self.h, self.svc
        from core.rag import snapshot

        snap = str(svc.folder(self.t, self.p) / snapshot.FILE)
        files, skipped = await svc._in("prep", prep.scan, root, MAX_FILE_BYTES, snap)
        self.t_scan = time.monotonic()
        known = await self._read("code_file_hashes")  # {path: sha256}
        current = {path: sha for path, sha, _size in files}
        changed = [path for path, sha, _size in files if known.get(path) != sha]
        gone = sorted(set(known) - set(current))
        self.stats.update(files=len(files), skipped=skipped, changed=len(changed), deleted=len(gone))
        h.progress(0, len(changed), "files")
        for path in gone:
            h.write(*drop_file(self.t, self.p, path))
        next_id = info["next_id"]
        for start in range(0, len(changed), FILES_PER_COMMIT):
            h.raise_if_cancelled()
            batch = changed[start:start + FILES_PER_COMMIT]
            now = self.e.now()
            for path, sha, size, chunks in await svc._in("prep", prep.chunk_files, root, batch):
                h.write(*drop_file(self.t, self.p, path))
                h.write(file_row(self.t, self.p, path, sha, size, len(chunks), now))
                for c in chunks:
                    h.write(Insert("code_chunks", chunk_row(self.t, self.p, next_id, c)))
                    next_id += 1
            h.write(self._index_update(next_id=next_id))
            await h.checkpoint({"phase": "files", "files_done": start + len(batch)})
            info["next_id"] = next_id
            h.progress(start + len(batch))
        if gone and not changed:
            await h.checkpoint({"phase": "files", "files_done": 0})
        files_n, chunks_n, dense_n = await self._read("code_counts")
        if changed or gone or info["chunks"] != chunks_n or info["files"] != files_n:
            h.write(self._index_update(files=files_n, chunks=chunks_n, dense_chunks=dense_n))
            await h.checkpoint({"phase": "lexical"})
        info.update(files=files_n, chunks=chunks_n, dense_chunks=dense_n)
        self.t_chunk = time.monotonic()
        self.stats["lexical_update"] = await svc._update_lexical(self.t, self.p, info["next_id"])

    # -- 4. embed --------------------------------------------------------------------------

    async def _embed(self, info: dict[str, Any], keys: list[tuple[int, str, str, bool]]) -> None:
        h = self.h
        pending: list[tuple[int, str]] = await self._read("code_pending")  # [(id, hash)] not yet embedded
        self.stats["dense_before"] = info["chunks"] - len(pending)
        live = {r[0] for r in await self._read("code_chunk_ids")}
        have: dict[str, int] = {}
        for cid, _path, hsh, dense in keys:  # vectors already in the index, by chunk hash
            if dense:
                have.setdefault(hsh, cid)
        dropped = [cid for cid, _p, _h, dense in keys if dense and cid not in live]
        h.progress(0, len(pending), "chunks")
        done = 0
        i = 0
        while i < len(pending):
            h.raise_if_cancelled()
            t0 = time.monotonic()
            batch: list[tuple[int, str]] = []
            while i < len(pending) and len(batch) < self.batch_chunks and (
                    not batch or time.monotonic() - t0 < SAVE_SECONDS):
                batch.append(pending[i])
                i += 1
            embedded, reused = await self._batch(batch, have)
            info["dense_chunks"] += len(batch)
            h.write(mark_dense(self.t, self.p, [cid for cid, _ in batch]),
                    self._index_update(dense_chunks=info["dense_chunks"]))
            await h.checkpoint({"phase": "embed", "dense": info["dense_chunks"]})
            done += len(batch)
            self.stats["embedded"] += embedded
            self.stats["reused"] += reused
            h.progress(done, len(pending), "chunks")
        if dropped:  # last: moved code has copied their vectors by now (a crash before leaves them unused)
            await self.svc.worker.remove(self.vec, dropped)
            await self.svc.worker.save(self.vec)

    async def _batch(self, batch: list[tuple[int, str]], have: dict[str, int]) -> tuple[int, int]:
        """Put the vectors of ``batch`` into the worker's index; returns (embedded, reused)."""
        w = self.svc.worker
        for _attempt in range(MAX_REDO):
            restarts = w.restarts
            copy = [(cid, have[hsh]) for cid, hsh in batch if hsh in have]
            found: set[int] = set()
            if copy:
                ids, vecs = await w.get(self.vec, sorted({old for _new, old in copy}))
                by_old = defaultdict(list)
                for new, old in copy:
                    by_old[old].append(new)
                rows = vecs.rows()
                new_ids, data = [], bytearray()
                for old, row in zip(ids, rows, strict=True):
                    for new in by_old[old]:
                        new_ids.append(new)
                        data += row.tobytes()
                if new_ids:
                    await w.add(self.vec, new_ids, vecs=bytes(data))
                found = set(new_ids)
            todo = [cid for cid, _ in batch if cid not in found]
            rows_by_id = {r[0]: r for r in await self._read("code_passages", todo)} if todo else {}
            from core.rag.chunks import Chunk
            from core.rag.represent import passage_text

            reqs = []
            for s in range(0, len(todo), EMBED_REQUEST):
                ids_part = [cid for cid in todo[s:s + EMBED_REQUEST] if cid in rows_by_id]
                texts = [passage_text(Chunk(path=r[1], start_line=r[2], end_line=r[3], language=r[4], kind=r[5],
                                            symbol=r[6], signature=r[7], text=r[9], part=r[8]))
                         for r in (rows_by_id[c] for c in ids_part)]
                if ids_part:
                    reqs.append(w.add(self.vec, ids_part, texts=texts))
            await asyncio.gather(*reqs)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            await w.save(self.vec)
            if w.restarts == restarts:  # else the additions not yet saved died with the worker
                for cid, hsh in batch:
                    have.setdefault(hsh, cid)
                return len(todo), len(found)
            log.warning("the search worker restarted during a batch of %s/%s; doing the batch again", self.t, self.p)
            await w.open_index(self.vec)
        raise MusubiError(f"the search worker restarted {MAX_REDO} times during one batch; see logs/search-worker.log.",
                          code="search_worker_failed")
