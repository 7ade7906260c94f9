"""The embedding worker process: ``python -m core.rag.worker`` (HEAVY: numpy, faiss, torch).

Started by :class:`core.rag.worker_client.WorkerClient`, never by the engine's own process: it
loads the model once, then answers frames (core/rag/frames.py) read from stdin on stdout, one at a
time, in order.  Everything a library prints goes to stderr, which the client points at a log file
(file descriptor 1 is moved aside at start so a stray ``print`` cannot corrupt the frame stream).

Operations (``op``; ``dir`` is an absolute folder holding one vector index):

=============  ==========================================  ========================================
op             arguments                                   result
=============  ==========================================  ========================================
hello          model=None                                  pid, model_id, dim, device, threads, batch
embed          texts, query=False                          n, dim, vecs (float32 bytes)
tokens         texts                                       counts (word pieces, specials included)
vec_open       dir, create=True                            stat (see vec_stat)
vec_stat       dir                                         exists, count, dirty, model_id, dim
vec_add        dir, ids (int64 bytes), vecs | texts        added, count
vec_remove     dir, ids                                    removed, count
vec_get        dir, ids                                    ids, vecs (the ones present)
vec_ids        dir                                         ids (int64 bytes, ascending: every id in it)
vec_search     dir, k, vecs | texts (embedded as queries)  n, k, scores (float32), ids (int64), count
vec_save       dir                                         the manifest
vec_reset      dir                                         stat (an empty index; saved on vec_save)
vec_close      dir, save=True                              saved (bool)
shutdown       —                                           saved (folders); the process then exits
=============  ==========================================  ========================================

Every operation takes an optional ``model``: the absolute folder of another sentence-transformers model
(a tuned embedder, core/tune), loaded on first use and kept (at most ``EXTRA_MODELS``); its texts are
embedded with it and an index it opens records its model id.  Without it, the worker's own model.

A clean end (``shutdown`` or stdin closed) saves every index with unsaved changes; a kill loses
only what was added since the last ``vec_save`` (the indexer checkpoints with it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import MusubiError
from core.rag import frames
from core.rag.errors import WorkerRequestError

log = logging.getLogger("musubi.rag.worker")
EXTRA_MODELS = 2  # tuned models kept loaded besides the default (the serving one and the one being activated)


class Worker:
    """Request handlers over one embedder and the vector indexes opened so far."""

    def __init__(self, embedder: Any, *, threads: int, load: Any = None) -> None:
        self.embedder = embedder
        self.threads = threads
        self.indexes: dict[str, Any] = {}
        self._load = load  # folder -> embedder, for requests naming another model
        self._extra: dict[str, Any] = {}

    def _embedder(self, req: dict[str, Any]) -> Any:
        """The request's model: ``model`` (a folder, loaded once) or the worker's own."""
        folder = req.get("model")
        if folder is None:
            return self.embedder
        if not isinstance(folder, str) or not os.path.isabs(folder) or self._load is None:
            raise WorkerRequestError(f"'model' must be an absolute model folder, got {folder!r}.")
        if folder not in self._extra:
            if len(self._extra) >= EXTRA_MODELS:
                self._extra.pop(next(iter(self._extra)))  # the oldest: reloaded if asked for again
            self._extra[folder] = self._load(folder)
        return self._extra[folder]

    # -- helpers ----------------------------------------------------------------------------

    def _dir(self, req: dict[str, Any]) -> str:
        folder = req.get("dir")
        if not isinstance(folder, str) or not os.path.isabs(folder):
            raise WorkerRequestError(f"'dir' must be an absolute folder path, got {folder!r}.")
        return os.path.normpath(folder)

    def _index(self, req: dict[str, Any], *, create: bool) -> Any:
        from core.rag.vectors import VectorIndex

        folder = self._dir(req)
        idx = self.indexes.get(folder)
        if idx is None:
            emb = self._embedder(req)
            kw = {"model_id": emb.model_id, "dim": emb.dim}
            if VectorIndex.exists(folder):
                idx = VectorIndex.open(folder, **kw)  # IndexCorrupt goes back to the caller, who rebuilds
            elif create:
                idx = VectorIndex.create(folder, **kw)
            else:
                return None
            self.indexes[folder] = idx
        return idx

    @staticmethod
    def _ids(req: dict[str, Any]) -> Any:
        import numpy as np

        raw = req.get("ids", b"")
        if not isinstance(raw, bytes) or len(raw) % 8:
            raise WorkerRequestError("'ids' must be int64 bytes (a multiple of 8 bytes).")
        return np.frombuffer(raw, dtype=np.int64)

    def _texts(self, req: dict[str, Any]) -> list[str]:
        texts = req.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise WorkerRequestError("'texts' must be a list of strings.")
        return texts

    def _vecs(self, req: dict[str, Any], *, query: bool) -> Any:
        """The request's vectors: raw ``vecs`` bytes, else ``texts`` embedded here."""
        import numpy as np

        emb = self._embedder(req)
        if "texts" in req:
            return emb.encode(self._texts(req), query=query)
        raw = req.get("vecs")
        if not isinstance(raw, bytes) or len(raw) % (4 * emb.dim):
            raise WorkerRequestError(f"'vecs' must be float32 bytes, rows of {emb.dim} values.")
        return np.frombuffer(raw, dtype=np.float32).reshape(-1, emb.dim)

    def _stat(self, folder: str, idx: Any) -> dict[str, Any]:
        from core.rag.vectors import VectorIndex

        if idx is None:
            return {"dir": folder, "exists": VectorIndex.exists(folder), "count": 0, "dirty": False,
                    "model_id": self.embedder.model_id, "dim": self.embedder.dim}
        return {"dir": folder, "exists": True, "count": idx.count, "dirty": idx.dirty,
                "model_id": idx.model_id, "dim": idx.dim}

    # -- operations -------------------------------------------------------------------------

    def op_hello(self, req: dict[str, Any]) -> dict[str, Any]:
        e = self._embedder(req)
        return {"pid": os.getpid(), "model_id": e.model_id, "dim": e.dim, "device": getattr(e, "device", "cpu"),
                "threads": self.threads, "batch": getattr(e, "batch", 0)}

    def op_embed(self, req: dict[str, Any]) -> dict[str, Any]:
        vecs = self._embedder(req).encode(self._texts(req), query=bool(req.get("query", False)))
        return {"n": int(vecs.shape[0]), "dim": int(vecs.shape[1]), "vecs": vecs.tobytes()}

    def op_tokens(self, req: dict[str, Any]) -> dict[str, Any]:
        count = getattr(self.embedder, "tokens", None)
        if count is None:
            raise WorkerRequestError("this embedder has no tokenizer.")
        return {"counts": [count(t) for t in self._texts(req)]}

    def op_vec_open(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._stat(self._dir(req), self._index(req, create=bool(req.get("create", True))))

    def op_vec_stat(self, req: dict[str, Any]) -> dict[str, Any]:
        folder = self._dir(req)
        return self._stat(folder, self.indexes.get(folder))

    def op_vec_add(self, req: dict[str, Any]) -> dict[str, Any]:
        ids = self._ids(req)
        vecs = self._vecs(req, query=False)
        idx = self._index(req, create=True)
        return {"added": idx.add(ids, vecs), "count": idx.count}

    def op_vec_remove(self, req: dict[str, Any]) -> dict[str, Any]:
        idx = self._index(req, create=True)
        return {"removed": idx.remove(self._ids(req)), "count": idx.count}

    def op_vec_ids(self, req: dict[str, Any]) -> dict[str, Any]:
        idx = self._index(req, create=True)
        return {"ids": idx.ids().tobytes()}

    def op_vec_get(self, req: dict[str, Any]) -> dict[str, Any]:
        idx = self._index(req, create=True)
        found, vecs = idx.get(self._ids(req))
        return {"ids": found.tobytes(), "vecs": vecs.tobytes()}

    def op_vec_search(self, req: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        k = req.get("k", 10)
        if not isinstance(k, int) or not 1 <= k <= 10_000:
            raise WorkerRequestError(f"'k' must be an integer from 1 to 10000, got {k!r}.")
        vecs = self._vecs(req, query=True)
        idx = self._index(req, create=False)
        if idx is None:  # never indexed: nothing to find (the engine says "not indexed yet")
            n = int(vecs.shape[0])
            return {"n": n, "k": k, "count": 0, "scores": np.full((n, k), -np.inf, dtype=np.float32).tobytes(),
                    "ids": np.full((n, k), -1, dtype=np.int64).tobytes()}
        scores, ids = idx.search(vecs, k)
        return {"n": int(scores.shape[0]), "k": k, "count": idx.count, "scores": scores.tobytes(),
                "ids": ids.tobytes()}

    def op_vec_save(self, req: dict[str, Any]) -> dict[str, Any]:
        idx = self._index(req, create=True)
        manifest: dict[str, Any] = idx.save()
        return manifest

    def op_vec_reset(self, req: dict[str, Any]) -> dict[str, Any]:
        from core.rag.vectors import VectorIndex

        folder = self._dir(req)
        emb = self._embedder(req)
        idx = VectorIndex.create(folder, model_id=emb.model_id, dim=emb.dim)
        idx.dirty = True  # an empty index replaces the old (maybe corrupt) one at the next save
        self.indexes[folder] = idx
        return self._stat(folder, idx)

    def op_vec_close(self, req: dict[str, Any]) -> dict[str, Any]:
        idx = self.indexes.pop(self._dir(req), None)
        saved = idx is not None and idx.dirty and bool(req.get("save", True))
        if saved:
            idx.save()
        return {"saved": saved}

    def save_all(self) -> list[str]:
        """Save every index with unsaved changes (a clean end)."""
        saved = []
        for folder, idx in self.indexes.items():
            if idx.dirty:
                try:
                    idx.save()
                    saved.append(folder)
                except OSError:
                    log.exception("could not save the vector index in %s", folder)
        return saved

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """One answer frame for one request frame (never raises)."""
        rid = req.get("id")
        op = req.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
        try:
            if handler is None:
                raise WorkerRequestError(f"unknown worker operation {op!r}.")
            return {"id": rid, "ok": True, "result": handler(req)}
        except MusubiError as exc:
            return {"id": rid, "ok": False, "error": exc.to_dict()}
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the warm worker
            log.exception("operation %r failed", op)
            error = {"code": "worker_error", "message": f"{type(exc).__name__}: {exc}"}
            return {"id": rid, "ok": False, "error": error}


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(worker: Worker, rfile: BinaryIO, wfile: BinaryIO) -> int:
    """Answer frames until stdin closes or ``shutdown``; exit status 0, or 2 after an unrecoverable frame."""

    def send(msg: dict[str, Any]) -> None:
        wfile.write(frames.encode(msg))
        wfile.flush()

    while True:
        header = _read_exact(rfile, frames.HEADER.size)
        if header is None:
            worker.save_all()
            return 0
        try:
            n = frames.frame_length(header)
        except frames.FrameError as exc:  # the stream cannot be resynchronised: answer, then stop
            send({"id": None, "ok": False, "error": {"code": "bad_frame", "message": str(exc)}})
            worker.save_all()
            return 2
        body = _read_exact(rfile, n)
        if body is None:
            worker.save_all()
            return 0
        try:
            req = frames.decode(body)
        except frames.FrameError as exc:  # framing is intact: answer and go on
            send({"id": None, "ok": False, "error": {"code": "bad_frame", "message": str(exc)}})
            continue
        if req.get("op") == "shutdown":
            send({"id": req.get("id"), "ok": True, "result": {"saved": worker.save_all()}})
            return 0
        send(worker.handle(req))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.rag.worker", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a local sentence-transformers folder (default: packaged MiniLM)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: half the CPUs)")
    p.add_argument("--batch", type=int, default=0, help="encode batch size (0: the measured default)")
    p.add_argument("--cache-dir", default=None, help="where the packaged model is extracted")
    p.add_argument("--fake", type=int, default=0, metavar="DIM", help="tests: a FakeEmbedder of DIM, no model")
    p.add_argument("--nice", type=int, default=0, help="niceness to add (the [search] nice setting)")
    args = p.parse_args(argv)
    if args.nice:
        with contextlib.suppress(OSError):  # lowering priority is always allowed; a failure only costs priority
            os.nice(args.nice)

    # Frames go to the real stdout; anything else that writes to fd 1 lands in the log (stderr).
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    from core.rag.embedder import FakeEmbedder, SentenceEmbedder, default_threads, offline_env

    offline_env()
    threads = args.threads or default_threads()
    started = time.perf_counter()
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
        embedder: Any
        from core.rag.model import resolve_model

        def load(folder: str) -> Any:
            if args.fake:  # tests: another deterministic fake, named after the folder (its own model id)
                return FakeEmbedder(args.fake, name=f"fake-{Path(folder).name}")
            return SentenceEmbedder(resolve_model(folder), device=args.device, threads=threads,
                                    batch=args.batch or None)

        if args.fake:
            embedder = FakeEmbedder(args.fake)
        else:
            spec = resolve_model(args.model, Path(args.cache_dir) if args.cache_dir else None)
            embedder = SentenceEmbedder(spec, device=args.device, threads=threads, batch=args.batch or None)
    except MusubiError as exc:
        # The client is waiting for the hello answer: say why instead of just dying.
        out.write(frames.encode({"id": 0, "ok": False, "error": exc.to_dict()}))
        log.error("%s", exc.message)
        return 1
    log.info("model %s (dim %d) ready in %.1fs; %d torch thread(s)", embedder.model_id, embedder.dim,
             time.perf_counter() - started, threads)
    return serve(Worker(embedder, threads=threads, load=load), sys.stdin.buffer, out)


if __name__ == "__main__":
    raise SystemExit(main())
