"""What the project's files looked like at the last index, to tell cheaply whether the index is stale (light).

The index job's scan records, for every path the walk lists, its size and modification time (and
the content hash of the files it indexed) in ``<index dir>/files.msgpack``.  ``GET
/v1/index/status`` then lists the paths again and compares: a path added or gone, or one whose size
changed, makes the index stale; one whose modification time alone changed is hashed, and is a
change only if its content differs (a ``touch`` or a checkout of the same bytes is not).  Costs one
``git ls-files`` and one ``stat`` per file.  Like git, it trusts (size, mtime): an edit that keeps
the size within the same clock tick as the scan's ``stat`` goes unseen until the next index.

The index job's scan also reuses it (:func:`trusted`): a file whose size and mtime are those of the
snapshot, last modified well before it, keeps its recorded hash without being read again.

The file is only a cache: a missing or unreadable one means "unknown" (None), never a wrong answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import msgspec

from core.rag.walk import listed

FILE = "files.msgpack"
Stat = tuple[int, int]  # size, mtime_ns


def stats(base: Path, names: list[str]) -> dict[str, Stat]:
    """(size, mtime_ns) of each listed path that exists (symlinks followed)."""
    out = {}
    for rel in names:
        try:
            st = os.stat(base / rel)
        except OSError:
            continue
        out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def take(root: str) -> dict[str, Stat]:
    """The stats of every path the walk lists under ``root`` now (taken before the files are read)."""
    base = Path(root).resolve()
    return stats(base, listed(base))


def save(path: Path, seen: dict[str, Stat], hashes: dict[str, str], taken_ns: int) -> None:
    """Write the snapshot (a new file renamed over the old one; only a cache, so no fsync).

    ``taken_ns``: when the stats were taken (before any file was read).
    """
    rows = [[rel, size, mtime, hashes.get(rel, "")] for rel, (size, mtime) in seen.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(msgspec.msgpack.encode({"taken": taken_ns, "rows": rows}))
    os.replace(tmp, path)


def load(path: Path) -> tuple[dict[str, tuple[int, int, str]], int] | None:
    """``({path: (size, mtime_ns, sha256 or "")}, taken_ns)`` of a snapshot, or None when it is unusable."""
    try:
        data = msgspec.msgpack.decode(path.read_bytes())
        return {str(r[0]): (int(r[1]), int(r[2]), str(r[3])) for r in data["rows"]}, int(data["taken"])
    except (OSError, msgspec.DecodeError, ValueError, TypeError, IndexError, KeyError):
        return None


def trusted(snap: tuple[dict[str, tuple[int, int, str]], int] | None) -> dict[str, tuple[int, int, str]]:
    """The snapshot's indexed files whose hash a scan may reuse when their (size, mtime) are unchanged.

    Only files last modified over a second before the snapshot's stats were taken: a later edit then
    always shows a new mtime (the "racy" case git guards against the same way).
    """
    if snap is None:
        return {}
    rows, taken = snap
    return {rel: r for rel, r in rows.items() if r[2] and r[1] < taken - 1_000_000_000}


def changed(root: str, path: Path) -> int | None:
    """How many files differ from the snapshot at ``path`` (added, gone or edited); None without a snapshot."""
    snap = load(path)
    if snap is None:
        return None
    old = snap[0]
    base = Path(root).resolve()
    try:
        now = take(root)
    except Exception:  # noqa: BLE001 - a folder gone or unlistable: the job says why; here it is "unknown"
        return None
    n = len(old.keys() ^ now.keys())
    for rel, (size, mtime) in now.items():
        was = old.get(rel)
        if was is None or (size, mtime) == was[:2]:
            continue
        if size != was[0] or not was[2]:
            n += 1
            continue
        with contextlib.suppress(OSError):  # same size, new time: a change only if the bytes differ
            if hashlib.sha256((base / rel).read_bytes()).hexdigest() != was[2]:
                n += 1
    return n
