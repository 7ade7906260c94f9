"""The engine's write-ahead journal: durable on fsync, applied to DuckDB in bulk.

Why: a DuckDB commit costs about a millisecond and each INSERT statement half
a millisecond more, whatever its size, so committing every small group to
DuckDB caps a busy engine at a few hundred acknowledged writes a second.  A
group commit therefore appends its mutations as one line to
``$MUSUBI_HOME/journal.wal`` and fsyncs it (a fraction of a millisecond) before
anyone is answered; a second thread applies journaled groups to DuckDB in large
transactions, recording the last applied group number in ``engine_meta`` in
the same transaction.  At start the engine re-applies what the journal holds
beyond that number, so a kill -9 loses nothing that was acknowledged.  Once
every journaled group is in DuckDB the journal is truncated.  Reads that query
DuckDB first wait until it has caught up (``GroupCommitter.sync``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from core.storage.base import Delete, Insert, Mutation, Update

APPLIED_KEY = "journal_applied"


def _enc(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, tuple):
        return {"$t": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "$dt" in v:
            return datetime.fromisoformat(v["$dt"])
        if "$t" in v:
            return tuple(_dec(x) for x in v["$t"])
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def _default(v: Any) -> Any:
    # json calls this only for values it cannot encode itself: cheaper than walking every row.
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    raise TypeError(f"cannot journal {type(v).__name__}")


# Built once (json.dumps with options builds an encoder per call).
_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def encode(no: int, mutations: list[Mutation]) -> bytes:
    """One journal line for group ``no``."""
    out = []
    for m in mutations:
        if isinstance(m, Insert):
            out.append({"k": "i", "t": m.table, "r": m.row})
        elif isinstance(m, Update):
            out.append({"k": "u", "t": m.table, "v": {k: _enc(v) for k, v in m.values.items()}, "w": {k: _enc(v) for k, v in m.where.items()}})
        else:
            out.append({"k": "d", "t": m.table, "w": {k: _enc(v) for k, v in m.where.items()}})
    return (_LINE.encode({"n": no, "m": out}) + "\n").encode("utf-8")


def decode(line: bytes) -> tuple[int, list[Mutation]]:
    d = json.loads(line)
    muts: list[Mutation] = []
    for m in d["m"]:
        if m["k"] == "i":
            muts.append(Insert(m["t"], {k: _dec(v) for k, v in m["r"].items()}))
        elif m["k"] == "u":
            muts.append(Update(m["t"], _dec(m["v"]), _dec(m["w"])))
        else:
            muts.append(Delete(m["t"], _dec(m["w"])))
    return int(d["n"]), muts


class Journal:
    """Append-only file of journaled groups (one JSON line each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size

    @property
    def fd(self) -> int:
        return self._fd

    def write(self, data: bytes) -> None:
        """Append ``data`` (not yet durable: see :meth:`append` or ``SyncHelper``).

        A write that fails part-way is cut off again, so no torn line is left in
        front of the groups journaled after it (replay stops at the first torn line).
        """
        start = self.size
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except BaseException:
            self.cut(start)
            raise
        self.size += len(data)

    def append(self, data: bytes) -> None:
        """Write and fsync; returns only once the bytes are durable."""
        self.write(data)
        # fdatasync also flushes the file size an append changed, which is all a
        # reader needs to find the bytes again; it skips the mtime update fsync does.
        os.fdatasync(self._fd)

    def cut(self, size: int) -> None:
        """Best effort: drop everything after ``size`` (bytes of a write that was not acknowledged)."""
        try:
            os.ftruncate(self._fd, size)
            self.size = size
        except OSError:
            self.size = os.fstat(self._fd).st_size

    def reset(self) -> None:
        """Empty the journal; made durable by the next sync."""
        os.ftruncate(self._fd, 0)
        self.size = 0

    def truncate(self) -> None:
        """Empty the journal durably."""
        self.reset()
        os.fsync(self._fd)

    def read(self) -> list[tuple[int, list[Mutation]]]:
        """Every complete, parseable group; a torn last line (crash mid-write) is ignored."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                out.append(decode(line))
            except (ValueError, KeyError, TypeError):
                break  # a torn tail: it was never acknowledged
        return out

    def close(self) -> None:
        os.close(self._fd)


def replay(journal: Journal, storage: Any, home: Path, now: datetime) -> tuple[int, int, list[Any]]:
    """Apply journaled groups that DuckDB does not have yet, then truncate.

    A group the database refuses is quarantined (core/engine/quarantine.py), so a
    bad group never stops a start; a failure worth retrying (disk full) is raised
    and the journal kept.  Returns (groups replayed, last applied group number,
    the groups quarantined).
    """
    from core.engine.quarantine import apply_groups  # it builds on this module

    applied = int(storage.meta_value(APPLIED_KEY) or 0)
    pending = [(n, m) for n, m in journal.read() if n > applied]
    res = apply_groups(storage, pending, home, now)
    if res.error is not None:
        raise res.error
    if pending:
        applied = pending[-1][0]
    journal.truncate()
    return len(pending), applied, res.quarantined
