"""What the project's files looked like at the last index, to tell cheaply whether the index is stale (light).

The index job's scan records, for every path the walk lists, its size and modification time (and
the content hash of the files it indexed) in ``<index dir>/files.msgpack``.  ``GET
/v1/index/status`` then lists the paths again and compares: a path added or gone, or one whose size
changed, makes the index stale; one whose modification time alone changed is hashed, and is a
change only if its content differs (a ``touch`` or a checkout of the same bytes is not).  Costs one
``git ls-files`` and one ``stat`` per file.  Like git, it trusts (size, mtime): an edit that keeps
the size within the same clock tick as the scan's ``stat`` goes unseen until the next index.

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


def save(path: Path, seen: dict[str, Stat], hashes: dict[str, str]) -> None:
    """Write the snapshot (a new file renamed over the old one; only a cache, so no fsync)."""
    rows = [[rel, size, mtime, hashes.get(rel, "")] for rel, (size, mtime) in seen.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(msgspec.msgpack.encode(rows))
    os.replace(tmp, path)


def changed(root: str, path: Path) -> int | None:
    """How many files differ from the snapshot at ``path`` (added, gone or edited); None without a snapshot."""
    try:
        rows = msgspec.msgpack.decode(path.read_bytes())
        old = {str(r[0]): (int(r[1]), int(r[2]), str(r[3])) for r in rows}
    except (OSError, msgspec.DecodeError, ValueError, TypeError, IndexError):
        return None
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
