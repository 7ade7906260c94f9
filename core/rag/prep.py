"""CPU-heavy steps of indexing and lexical search, run in helper processes (heavy: bm25s, tree-sitter).

The engine's event loop must not parse files or tokenise 100k chunks: the GIL would stall every
request meanwhile.  So these functions run in child processes of the engine
(:class:`core.rag.service.IndexService` keeps two single-process pools: one for the walk and
chunking of an index job, one that keeps each project's lexical index loaded and answers its
queries).  Arguments and answers are plain tuples and dicts (pickled by the pool).

A project's lexical state lives in its folder ``<index dir>/lexical``: ``current.json`` names the
generation in force; ``lex-<gen>/`` is the :class:`core.rag.lexical.LexicalIndex`,
``meta-<gen>.msgpack`` each chunk's path, lines, symbol, language and snippet, ``docs-<gen>.npz`` the
term counts by chunk id.  A new generation is written whole (fsynced) before ``current.json`` is
replaced (write, fsync, rename), so a crash leaves the old generation or the new one, never a mix.
A one-file change is applied in memory (:func:`lex_update`) and written afterwards
(:func:`lex_persist`); see :mod:`core.rag.lexstate`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.rag.lexstate import LexState

# A chunk as the engine stores it (columns of code_chunks, in this order).
ROW_FIELDS = ("chunk_id", "path", "start_line", "end_line", "language", "kind", "symbol", "signature", "part",
              "text")
SNIPPET_LINES = 12
# The token cache of the last big lexical build (term counts by text digest; only ever a cache).
TOKENS_FILE = "tokens.npz"
TOKENS_SAVE_MIN = 1000  # texts tokenised by a build before it rewrites TOKENS_FILE (small edits do not)
SNIPPET_CHARS = 1200

# The lexical indexes loaded in this process: folder -> core.rag.lexstate.LexState.
_LOADED: dict[str, LexState] = {}
# Each project's token cache (folder -> core.rag.lexical.TokenCache): a rebuild after a one-file change
# tokenises that file's chunks only.  Saved to TOKENS_FILE after a big build, read by the first build
# of a new helper process; a stale file only costs the re-tokenising of the texts it lacks.
_TOKENS: dict[str, Any] = {}


def watch_parent(ppid: int) -> None:
    """Pool initializer: exit when the engine is gone (after ``kill -9`` nobody would stop this process)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-engine", daemon=True).start()
    # Bulk work (chunking, BM25 builds) yields the CPU to the engine's loop, which answers requests.
    with contextlib.suppress(OSError):
        os.nice(5)


# -- walk and chunk (the index job's pool) -----------------------------------------------------


def scan(root: str, max_bytes: int, snap: str | None = None) -> tuple[list[tuple[str, str, int]], int]:
    """The files to index under ``root``: ``[(path, sha256, size)]`` sorted by path, and how many were skipped.

    ``snap``: where to record the files' stats for the status's staleness check (core/rag/snapshot.py).
    """
    from core.rag import snapshot
    from core.rag.walk import iter_files

    skipped = [0]

    def on_skip(_path: str, _why: str) -> None:
        skipped[0] += 1

    known = snapshot.trusted(snapshot.load(Path(snap))) if snap else {}
    taken = time.time_ns()
    seen = snapshot.take(root) if snap else {}  # before reading: an edit made meanwhile shows as a change
    files = [(f.path, f.sha256, f.size)
             for f in iter_files(root, max_bytes=max_bytes, on_skip=on_skip, known=known)]
    if snap:
        snapshot.save(Path(snap), seen, {path: sha for path, sha, _size in files}, taken)
    return files, skipped[0]


def chunk_files(root: str, paths: list[str]) -> list[tuple[str, str, int, list[dict[str, Any]]]]:
    """Read and chunk ``paths``: per file ``(path, sha256 of the bytes read, size, chunks)``.

    The hash is of the bytes actually chunked (the file may have changed since the scan), so
    the stored hash always describes the stored chunks.  A file that vanished or cannot be
    decoded gets no chunks (it is still recorded, so it is not re-read until it changes).
    """
    import hashlib

    from core.rag.chunking import chunk_file
    from core.rag.textio import decode_bytes

    out: list[tuple[str, str, int, list[dict[str, Any]]]] = []
    base = Path(root)
    for rel in paths:
        try:
            data = (base / rel).read_bytes()
        except OSError:
            out.append((rel, "", 0, []))
            continue
        text = decode_bytes(data)
        chunks = chunk_file(rel, text) if text else []
        out.append((rel, hashlib.sha256(data).hexdigest(), len(data), [
            {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "language": c.language,
             "kind": c.kind, "symbol": c.symbol, "signature": c.signature, "part": c.part, "hash": c.hash,
             "text": c.text} for c in chunks]))
    return out


# -- lexical index (the search pool) ----------------------------------------------------------


def _snippet(text: str) -> str:
    lines = text.splitlines()[:SNIPPET_LINES]
    return "\n".join(lines)[:SNIPPET_CHARS]


def _meta(r: tuple[Any, ...]) -> tuple[str, int, int, str, str, str]:
    return (r[1], int(r[2]), int(r[3]), r[6], r[4], _snippet(r[9]))


def _lexical_texts(rows: list[tuple[Any, ...]]) -> list[str]:
    from core.rag.chunks import Chunk
    from core.rag.represent import lexical_text

    return [lexical_text(Chunk(path=r[1], start_line=r[2], end_line=r[3], language=r[4], kind=r[5], symbol=r[6],
                               signature=r[7], text=r[9], part=r[8])) for r in rows]


def _cache(folder: str) -> Any:
    from core.rag.lexical import TokenCache

    cache = _TOKENS.get(folder)
    if cache is None:  # first build in this process: start from the cache an earlier build saved
        cache = _TOKENS[folder] = TokenCache.load(Path(folder) / TOKENS_FILE)
    return cache


def lex_build(folder: str, rows: list[tuple[Any, ...]], mark: int | None = None) -> dict[str, Any]:
    """Build the lexical index of a project from all its chunk rows (:data:`ROW_FIELDS`, in id order).

    ``mark`` is the project's ``next_id`` the rows were read at (see :mod:`core.rag.lexstate`).  The new
    generation is written and made current before this returns.
    """
    from core.rag.lexical import LexicalIndex
    from core.rag.lexstate import LexState, write_generation

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    ids = [int(r[0]) for r in rows]
    cache = _cache(folder)
    counts = cache.counts(_lexical_texts(rows))
    index = LexicalIndex.from_counts(ids, counts, cache)
    if cache.tokenised >= max(TOKENS_SAVE_MIN, len(rows) // 10):  # a big build: save its tokens for a restarted helper
        cache.save(d / TOKENS_FILE)
    # A chunk id's row never changes (ids are not reused), so the loaded state's entries are kept.
    prev = _LOADED.get(folder)
    prev_meta = prev.meta if prev is not None else {}
    meta = {}
    for r in rows:
        m = prev_meta.get(int(r[0]))
        meta[int(r[0])] = m if m is not None and m[:3] == (r[1], r[2], r[3]) else _meta(r)
    state = LexState(gen=prev.gen if prev else 0, index=index, meta=meta, mark=mark,
                     docs=dict(zip(ids, counts, strict=True)), saved=False)
    write_generation(d, state, cache)
    _LOADED[folder] = state
    return {"gen": state.gen, "chunks": len(rows), "mark": mark}


def lex_update(folder: str, mark_before: int, live: bytes, rows: list[tuple[Any, ...]],
               mark: int) -> dict[str, Any] | None:
    """Apply a change to the project's lexical index in place: ``rows`` added, chunks not in ``live`` removed.

    ``live`` holds every chunk id of the project now (int64 bytes); ``rows`` the chunks added since
    ``mark_before`` (:data:`ROW_FIELDS`, ids above every indexed id).  Returns None, changing nothing,
    when the helper's state is not the one at ``mark_before`` or the change does not add up: the
    caller builds from all rows instead.  The new state is written later by :func:`lex_persist`.
    """
    from array import array

    from core.rag.lexical import LexicalIndex
    from core.rag.lexstate import load_docs

    st = _loaded(folder)
    if st is None or st.mark is None or st.mark != mark_before:
        return None
    cache = _cache(folder)
    docs = st.docs
    if docs is None:  # loaded from disk: the counts of its generation
        docs = load_docs(Path(folder) / f"docs-{st.gen}.npz", cache)
        if docs is None or len(docs) != len(st.meta):
            return None
    alive = array("q")
    alive.frombytes(live)
    alive_set = set(alive)
    new_ids = [int(r[0]) for r in rows]
    top = max(docs, default=-1)
    removed = [cid for cid in docs if cid not in alive_set]
    if (new_ids != sorted(set(new_ids)) or (new_ids and new_ids[0] <= top)
            or len(docs) - len(removed) + len(new_ids) != len(alive_set) or not alive_set.issuperset(new_ids)):
        return None
    docs = dict(docs)
    for cid in removed:
        del docs[cid]
    counts = cache.add(_lexical_texts(rows))
    docs.update(zip(new_ids, counts, strict=True))  # new ids are the largest: the dict stays in id order
    meta = dict(st.meta)
    for cid in removed:
        meta.pop(cid, None)
    meta.update((int(r[0]), _meta(r)) for r in rows)
    st.index = LexicalIndex.from_counts(list(docs), list(docs.values()), cache)
    st.meta, st.docs, st.mark, st.saved = meta, docs, mark, False
    return {"gen": st.gen, "chunks": len(docs), "mark": mark, "added": len(rows), "removed": len(removed)}


def lex_persist(folder: str) -> bool:
    """Write the project's in-memory lexical state as a new generation if an update left it unsaved."""
    from core.rag.lexstate import write_generation

    st = _LOADED.get(folder)
    if st is None or st.saved:
        return False
    write_generation(Path(folder), st, _TOKENS.get(folder))
    return True


def _loaded(folder: str, expect: int | None = None) -> LexState | None:
    """The project's lexical state (the one in memory, else the current generation on disk), or None.

    ``expect``: the mark the caller knows is current; a state with another mark is None (stale).
    """
    from core.rag.lexstate import read_generation

    st = _LOADED.get(folder)
    if st is None:
        st = read_generation(Path(folder))
        if st is None:
            return None
        _LOADED[folder] = st
    if expect is not None and st.mark != expect:
        return None
    return st


def lex_state(folder: str) -> dict[str, Any] | None:
    """``{"gen", "chunks", "mark"}`` of the project's usable lexical index, or None (missing or torn: rebuild it)."""
    got = _loaded(folder)
    return None if got is None else {"gen": got.gen, "chunks": len(got.meta), "mark": got.mark}


def matches(path: str, language: str, glob: str | None, lang: str | None) -> bool:
    """Whether a chunk passes the search filters (a glob without ``/`` may match the file name alone)."""
    if lang is not None and language != lang:
        return False
    if glob is None:
        return True
    if fnmatch.fnmatchcase(path, glob):
        return True
    return "/" not in glob and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], glob)


def lex_search(folder: str, query: str, k: int, glob: str | None, lang: str | None,
               expect: int | None = None) -> list[tuple[int, float]] | None:
    """The ``k`` best lexical hits passing the filters, best first; None when the project has no lexical index
    (or, with ``expect``, none of that mark)."""
    got = _loaded(folder, expect)
    if got is None:
        return None
    index, meta = got.index, got.meta
    want = k if glob is None and lang is None else max(k * 20, 1000)
    out = []
    for cid, score in index.search(query, want):
        m = meta.get(cid)
        if m is not None and matches(m[0], m[4], glob, lang):
            out.append((cid, score))
            if len(out) >= k:
                break
    return out


def lex_rows(folder: str, ids: list[int], glob: str | None, lang: str | None) -> dict[int, tuple[Any, ...]]:
    """``id -> (path, start, end, symbol, language, snippet)`` of those ``ids`` that exist and pass the filters."""
    got = _loaded(folder)
    if got is None:
        return {}
    meta = got.meta
    out = {}
    for cid in ids:
        m = meta.get(cid)
        if m is not None and matches(m[0], m[4], glob, lang):
            out[cid] = m
    return out


def lex_forget(folder: str) -> None:
    """Drop a project's loaded index and token cache (its folder is being removed)."""
    _LOADED.pop(folder, None)
    _TOKENS.pop(folder, None)
