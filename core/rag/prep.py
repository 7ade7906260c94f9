"""CPU-heavy steps of indexing and lexical search, run in helper processes (heavy: bm25s, tree-sitter).

The engine's event loop must not parse files or tokenise 100k chunks: the GIL would stall every
request meanwhile.  So these functions run in child processes of the engine
(:class:`core.rag.service.IndexService` keeps two single-process pools: one for the walk and
chunking of an index job, one that keeps each project's lexical index loaded and answers its
queries).  Arguments and answers are plain tuples and dicts (pickled by the pool).

A project's lexical state lives in its folder ``<index dir>/lexical``: ``current.json`` names the
generation in force; ``lex-<gen>/`` is the :class:`core.rag.lexical.LexicalIndex` and
``meta-<gen>.msgpack`` each chunk's path, lines, symbol, language and snippet.  A new generation
is written whole (fsynced) before ``current.json`` is replaced (write, fsync, rename), so a crash
leaves the old generation or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
from pathlib import Path
from typing import Any

# A chunk as the engine stores it (columns of code_chunks, in this order).
ROW_FIELDS = ("chunk_id", "path", "start_line", "end_line", "language", "kind", "symbol", "signature", "part",
              "text")
SNIPPET_LINES = 12
# The token cache of the last big lexical build (term counts by text digest; only ever a cache).
TOKENS_FILE = "tokens.npz"
TOKENS_SAVE_MIN = 1000  # texts tokenised by a build before it rewrites TOKENS_FILE (small edits do not)
SNIPPET_CHARS = 1200

# The lexical indexes loaded in this process: folder -> (generation, LexicalIndex, meta).
_LOADED: dict[str, tuple[int, Any, dict[int, tuple[str, int, int, str, str, str]]]] = {}
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


def scan(root: str, max_bytes: int) -> tuple[list[tuple[str, str, int]], int]:
    """The files to index under ``root``: ``[(path, sha256, size)]`` sorted by path, and how many were skipped."""
    from core.rag.walk import iter_files

    skipped = [0]

    def on_skip(_path: str, _why: str) -> None:
        skipped[0] += 1

    files = [(f.path, f.sha256, f.size) for f in iter_files(root, max_bytes=max_bytes, on_skip=on_skip)]
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


def _current(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "current.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("gen"), int) else None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _snippet(text: str) -> str:
    lines = text.splitlines()[:SNIPPET_LINES]
    return "\n".join(lines)[:SNIPPET_CHARS]


def lex_build(folder: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Build the lexical index of a project from all its chunk rows (:data:`ROW_FIELDS`) and make it current."""
    import msgspec

    from core.rag.chunks import Chunk
    from core.rag.lexical import LexicalIndex, TokenCache
    from core.rag.represent import lexical_text

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    cur = _current(d)
    gen = (cur["gen"] if cur else 0) + 1
    ids = [int(r[0]) for r in rows]
    texts = [lexical_text(Chunk(path=r[1], start_line=r[2], end_line=r[3], language=r[4], kind=r[5], symbol=r[6],
                                signature=r[7], text=r[9], part=r[8])) for r in rows]
    cache = _TOKENS.get(folder)
    if cache is None:  # first build in this process: start from the cache an earlier build saved
        cache = _TOKENS[folder] = TokenCache.load(d / TOKENS_FILE)
    index = LexicalIndex.build(ids, texts, cache)
    if cache.tokenised >= max(TOKENS_SAVE_MIN, len(texts) // 10):  # a big build: save its tokens for a restarted helper
        cache.save(d / TOKENS_FILE)
    index.save(d / f"lex-{gen}")
    # A chunk id's row never changes (ids are not reused), so the loaded generation's entries are kept.
    prev = _LOADED.get(folder)
    prev_meta = prev[2] if prev is not None else {}
    meta = {}
    for r in rows:
        cid = int(r[0])
        m = prev_meta.get(cid)
        if m is None or m[0] != r[1] or m[1] != r[2] or m[2] != r[3]:
            m = (r[1], int(r[2]), int(r[3]), r[6], r[4], _snippet(r[9]))
        meta[cid] = m
    meta_path = d / f"meta-{gen}.msgpack"
    with open(meta_path, "wb") as f:
        f.write(msgspec.msgpack.encode([[k, *v] for k, v in meta.items()]))
        f.flush()
        os.fsync(f.fileno())
    tmp = d / "current.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"gen": gen, "chunks": len(rows)}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, d / "current.json")
    _fsync_dir(d)
    _LOADED[folder] = (gen, index, meta)
    for old in d.iterdir():  # earlier generations (and leftovers of a crash)
        name = old.name
        stale = name.startswith(("lex-", "meta-", f".{TOKENS_FILE}.tmp-"))
        if stale and name not in (f"lex-{gen}", f"meta-{gen}.msgpack"):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    old.unlink()
    return {"gen": gen, "chunks": len(rows)}


def _loaded(folder: str) -> tuple[int, Any, dict[int, tuple[str, int, int, str, str, str]]] | None:
    """The project's current lexical index, loaded once (None when there is none or it is unreadable)."""
    import msgspec

    from core.rag.lexical import LexicalIndex, LexicalIndexCorrupt

    d = Path(folder)
    cur = _current(d)
    if cur is None:
        _LOADED.pop(folder, None)
        return None
    have = _LOADED.get(folder)
    if have is not None and have[0] == cur["gen"]:
        return have
    try:
        index = LexicalIndex.load(d / f"lex-{cur['gen']}")
        raw = msgspec.msgpack.decode((d / f"meta-{cur['gen']}.msgpack").read_bytes())
        meta = {int(r[0]): (str(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6])) for r in raw}
    except (LexicalIndexCorrupt, OSError, msgspec.DecodeError, ValueError, IndexError, TypeError):
        _LOADED.pop(folder, None)
        return None
    if len(meta) != cur.get("chunks"):
        return None
    _LOADED[folder] = (cur["gen"], index, meta)
    return _LOADED[folder]


def lex_state(folder: str) -> dict[str, Any] | None:
    """``{"gen", "chunks"}`` of the project's usable lexical index, or None (missing or torn: rebuild it)."""
    got = _loaded(folder)
    return None if got is None else {"gen": got[0], "chunks": len(got[2])}


def matches(path: str, language: str, glob: str | None, lang: str | None) -> bool:
    """Whether a chunk passes the search filters (a glob without ``/`` may match the file name alone)."""
    if lang is not None and language != lang:
        return False
    if glob is None:
        return True
    if fnmatch.fnmatchcase(path, glob):
        return True
    return "/" not in glob and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], glob)


def lex_search(folder: str, query: str, k: int, glob: str | None, lang: str | None) -> list[tuple[int, float]] | None:
    """The ``k`` best lexical hits passing the filters, best first; None when the project has no lexical index."""
    got = _loaded(folder)
    if got is None:
        return None
    _gen, index, meta = got
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
    meta = got[2]
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
