"""A project's lexical state in the ``lex`` helper, and its generations on disk (heavy: numpy, msgspec).

The helper keeps, per project folder, the BM25 index, each chunk's metadata and (once an
incremental update needs them) each chunk's term counts.  An index job that changed one file sends
only that file's rows and the ids still alive (:func:`core.rag.prep.lex_update`): the counts of
every other chunk are reused and the BM25 scores recomputed from them, which gives exactly what a
build from all the texts gives (BM25's idf and average length depend on every chunk, so scores are
recomputed, not patched).

``mark`` names the chunk set a state indexes: the project's ``next_id`` when it was built.  Chunk ids
are never reused and only grow, so within a project's history (next_id, count) identifies the set of
chunks: an update is applied only to a state whose mark is the one the engine expects, and a search
made while no job runs refuses a state with another mark (it is rebuilt from the chunk table).

On disk (``<index dir>/lexical``), a generation is ``lex-<gen>/`` (the index), ``meta-<gen>.msgpack``
(the metadata) and ``docs-<gen>.npz`` (term counts by chunk id, so a restarted helper can apply an
update without re-tokenising); ``current.json`` (gen, chunks, mark) is replaced last, atomically.
After an incremental update the new generation is written by a separate, later request
(:func:`core.rag.prep.lex_persist`): the files are only a cache of the chunk table, so a crash
before it costs a rebuild at the next start, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.rag.model import _fsync_dir

if TYPE_CHECKING:
    import numpy as np

    from core.rag.lexical import LexicalIndex, TokenCache

Meta = tuple[str, int, int, str, str, str]  # path, start_line, end_line, symbol, language, snippet
Counts = tuple["np.ndarray", "np.ndarray", int]  # term ids (of the helper's TokenCache), counts, length


@dataclass
class LexState:
    """One project's lexical index as the helper holds it."""

    gen: int  # the generation on disk it was loaded from or last written as
    index: LexicalIndex
    meta: dict[int, Meta]
    mark: int | None  # next_id of the chunk set it indexes; None: unknown (written by an older version)
    docs: dict[int, Counts] | None  # term counts by chunk id, in id order; None until an update needs them
    saved: bool  # False after an update not yet written as a generation


def current(folder: Path) -> dict[str, Any] | None:
    """``current.json`` of a lexical folder, or None when missing or unreadable."""
    try:
        data = json.loads((folder / "current.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("gen"), int) else None


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_docs(path: Path, docs: dict[int, Counts], terms: list[str]) -> None:
    """Term counts by chunk id (vocabulary included), fsynced; ``path`` is a new generation's file."""
    import io

    import numpy as np

    vals = list(docs.values())
    vocab = "\n".join(terms).encode("utf-8", "surrogatepass")
    buf = io.BytesIO()
    np.savez(buf, ids=np.fromiter(docs.keys(), dtype=np.int64, count=len(docs)),
             sizes=np.asarray([len(v[0]) for v in vals], dtype=np.int64),
             lens=np.asarray([v[2] for v in vals], dtype=np.int64),
             terms=np.concatenate([v[0] for v in vals] or [np.zeros(0, np.int64)]).astype(np.int32),
             counts=np.concatenate([v[1] for v in vals] or [np.zeros(0, np.float32)]),
             nterms=np.asarray([len(terms)], dtype=np.int64), vocab=np.frombuffer(vocab, dtype=np.uint8))
    _write_file(path, buf.getvalue())


def load_docs(path: Path, cache: TokenCache) -> dict[int, Counts] | None:
    """What :func:`save_docs` wrote, with term ids mapped into ``cache``'s vocabulary; None if unusable."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            ids, sizes, lens = z["ids"], z["sizes"], z["lens"]
            terms, counts, n_terms = z["terms"].astype(np.int64), z["counts"], int(z["nterms"][0])
            vocab = bytes(z["vocab"]).decode("utf-8", "surrogatepass").split("\n") if n_terms else []
    except (OSError, ValueError, KeyError, IndexError, UnicodeDecodeError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if not (len(vocab) == n_terms and len(ids) == len(sizes) == len(lens) and int(sizes.sum()) == len(terms)
            == len(counts) and (not len(terms) or (int(terms.min()) >= 0 and int(terms.max()) < n_terms))):
        return None
    if not len(ids):
        return {}
    remap = np.empty(n_terms, dtype=np.int64)
    for i, t in enumerate(vocab):
        tid = cache.term_ids.get(t)
        if tid is None:
            tid = cache.term_ids[t] = len(cache.terms)
            cache.terms.append(t)
        remap[i] = tid
    mapped = remap[terms]
    bounds = np.cumsum(sizes)[:-1]
    return {int(cid): (t, c, int(n)) for cid, t, c, n in
            zip(ids.tolist(), np.split(mapped, bounds), np.split(counts, bounds), lens.tolist(), strict=True)}


def write_generation(folder: Path, state: LexState, cache: TokenCache | None) -> None:
    """Write ``state`` as the next generation and make it current (new files, fsync, then ``current.json``).

    ``cache`` (the term vocabulary of ``state.docs``) is needed only when the docs are known.
    """
    import msgspec

    folder.mkdir(parents=True, exist_ok=True)
    cur = current(folder)
    gen = max(state.gen, cur["gen"] if cur else 0) + 1
    state.index.save(folder / f"lex-{gen}")
    _write_file(folder / f"meta-{gen}.msgpack", msgspec.msgpack.encode([[k, *v] for k, v in state.meta.items()]))
    if state.docs is not None and cache is not None:
        save_docs(folder / f"docs-{gen}.npz", state.docs, cache.terms)
    tmp = folder / "current.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"gen": gen, "chunks": len(state.meta), "mark": state.mark}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / "current.json")
    _fsync_dir(folder)
    state.gen, state.saved = gen, True
    keep = (f"lex-{gen}", f"meta-{gen}.msgpack", f"docs-{gen}.npz")
    for old in folder.iterdir():  # earlier generations (and leftovers of a crash)
        if old.name.startswith(("lex-", "meta-", "docs-", ".tokens.npz.tmp-")) and old.name not in keep:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    old.unlink()


def read_generation(folder: Path) -> LexState | None:
    """The current generation on disk (index and metadata; the docs are read when an update needs them)."""
    import msgspec

    from core.rag.lexical import LexicalIndex, LexicalIndexCorrupt

    cur = current(folder)
    if cur is None:
        return None
    gen = cur["gen"]
    try:
        index = LexicalIndex.load(folder / f"lex-{gen}")
        raw = msgspec.msgpack.decode((folder / f"meta-{gen}.msgpack").read_bytes())
        meta = {int(r[0]): (str(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6])) for r in raw}
    except (LexicalIndexCorrupt, OSError, msgspec.DecodeError, ValueError, IndexError, TypeError):
        return None
    if len(meta) != cur.get("chunks") or len(index) != len(meta):
        return None
    mark = cur.get("mark")
    return LexState(gen=gen, index=index, meta=meta, mark=mark if isinstance(mark, int) else None, docs=None,
                    saved=True)
