"""The write-ahead journal: round trip, torn tails, replay into storage exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from core.engine.journal import APPLIED_KEY, Journal, decode, encode, replay
from core.storage.base import Delete, Insert, Update
from core.storage.duckdb_store import DuckDBStorage


def _muts(i: int) -> list:
    ts = datetime(2026, 11, 26, 12, 0, 0, i)
    return [
        Insert("engine_meta", {"key": f"k{i}", "value": f"v{i} é"}),
        Update("engine_meta", {"value": f"w{i}"}, {"key": f"k{i}"}),
        Insert("quota_alerts", {"quota_id": i, "window_start": ts, "threshold": 0.5, "ts": ts}),
        Delete("quota_alerts", {"quota_id": ("<", 0)}),
    ]


def test_encode_decode_round_trip_keeps_types() -> None:
    no, muts = decode(encode(7, _muts(3)))
    assert no == 7 and muts == _muts(3)
    assert isinstance(muts[2].row["ts"], datetime) and muts[3].where["quota_id"] == ("<", 0)


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.wal")
    j.append(encode(1, _muts(1)) + encode(2, _muts(2)))
    j.append(encode(3, _muts(3))[:-20])  # crash in the middle of a write
    assert [n for n, _m in j.read()] == [1, 2]


def test_replay_applies_only_what_storage_lacks_then_truncates(tmp_path: Path) -> None:
    st = DuckDBStorage(tmp_path / "db.duckdb")
    j = Journal(tmp_path / "j.wal")
    st.apply(_muts(1), meta={APPLIED_KEY: "1"})  # group 1 already reached storage
    j.append(encode(1, _muts(1)) + encode(2, _muts(2)) + encode(3, _muts(3)))
    replayed, last, quarantined = replay(j, st, tmp_path, datetime(2026, 11, 26))
    assert (replayed, last, quarantined) == (2, 3, [])
    assert j.size == 0 and (tmp_path / "j.wal").stat().st_size == 0
    rows = st.con.execute("SELECT key, value FROM engine_meta WHERE key LIKE 'k%' ORDER BY key").fetchall()
    assert rows == [("k1", "w1"), ("k2", "w2"), ("k3", "w3")]
    assert st.meta_value(APPLIED_KEY) == "3"
    # A second replay finds nothing to do (idempotent).
    assert replay(j, st, tmp_path, datetime(2026, 11, 26)) == (0, 3, [])
    st.close()


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T for stopped, Z ...); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``cond`` with the event loop running; fail after ``timeout`` seconds."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


def test_sync_helper_syncs_reports_errors_and_survives_its_own_death(tmp_path: Path) -> None:
    """fdatasync runs in a helper process; a failed sync names the errno; a dead helper is replaced."""
    import asyncio
    import errno
    import os
    import signal

    import pytest

    from core.engine.syncer import SyncHelper

    async def scenario() -> None:
        j = Journal(tmp_path / "s.wal")
        s = SyncHelper(j.fd)
        j.write(b"one\n")
        await s.sync()
        first = s.pid
        assert first is not None and s.syncs == 1
        # Several syncs in flight at once are answered in order, all of them.
        await asyncio.gather(*(s.sync() for _ in range(5)))
        assert s.syncs == 6
        # The helper dies with a sync in flight: that sync fails (not acknowledged) ...
        os.kill(first, signal.SIGSTOP)
        await until(lambda: _state(first) == "T")  # stopped: it cannot answer from here on
        pending = asyncio.ensure_future(s.sync())
        for _ in range(3):  # let the loop write the request and run any callback that is ready
            await asyncio.sleep(0)
        assert not pending.done()
        os.kill(first, signal.SIGKILL)
        with pytest.raises(OSError) as gone:
            await asyncio.wait_for(pending, 10)
        assert gone.value.errno == errno.EIO and "exited" in str(gone.value)
        # ... and the next one runs on a new helper.
        await s.sync()
        second = s.pid
        assert second not in (None, first)
        # A helper found dead between syncs is replaced without failing anything.
        os.kill(second, signal.SIGKILL)
        await until(lambda: s.pid is None)  # the loop saw its pipe close and let it go
        await s.sync()
        assert s.pid not in (None, first, second)
        s.close()
        assert s.pid is None
        j.close()

        r, w = os.pipe()  # fdatasync on a pipe fails with EINVAL: the errno reaches the caller
        bad = SyncHelper(r)
        with pytest.raises(OSError) as ei:
            await bad.sync()
        assert ei.value.errno == errno.EINVAL and "fdatasync" in str(ei.value)
        bad.close()
        os.close(r)
        os.close(w)

    asyncio.run(scenario())
