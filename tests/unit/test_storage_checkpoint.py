"""DuckDB's WAL is checkpointed while the engine runs (issue 9, item 7: it reached 102 MB, never checkpointed).

The cause: single-row reads used ``fetchone()`` on the thread's cursor, which left the
result, and with it a transaction, open; DuckDB can checkpoint (on its own or on request)
only when no older transaction is open, so neither its WAL nor the memory holding the
rows committed since the last checkpoint ever shrank.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from pathlib import Path

import pytest

import core.engine.commit as commit_module
from core.audit import GENESIS_HASH, make_event
from core.engine.access import Caller
from core.engine.engine import Engine
from core.paths import HomePaths
from core.storage.base import Insert
from core.storage.duckdb_store import DuckDBStorage

NOW = datetime(2026, 12, 6, 1, 0, 0)


def _events(n: int) -> list[Insert]:
    out, prev = [], GENESIS_HASH
    for i in range(1, n + 1):
        ev = make_event("t", i, NOW.replace(microsecond=i), "a", "x.y", "r", "success", {"i": i}, prev)
        prev = ev.hash
        out.append(Insert("audit_log", {k: getattr(ev, k) for k in (
            "tenant_id", "seq", "ts", "actor", "action", "resource", "outcome", "details", "prev_hash", "hash")}))
    return out


def test_reads_on_the_loop_thread_do_not_block_a_checkpoint(tmp_path: Path) -> None:
    st = DuckDBStorage(tmp_path / "db.duckdb")
    st.apply(_events(3), meta={"journal_applied": "1"})
    st.load(NOW)
    # The single-row reads the engine makes on its loop thread's cursor (and on read threads'):
    # each one, last on its cursor, used to leave a transaction open.
    for read in (
        st.schema_version, lambda: st.meta_value("journal_applied"), lambda: st.audit_chain_hash("t", 2),
        lambda: st.last_event_before("t", NOW.replace(year=2027)), lambda: st.count_events("t", 3),
    ):
        read()
    # Then the apply thread commits more, as it does all day.
    t = threading.Thread(target=st.apply, args=(_events(6)[3:],), kwargs={"meta": {"journal_applied": "2"}})
    t.start()
    t.join()
    assert st.wal_size() > 0
    st.checkpoint()  # raised "Cannot CHECKPOINT: there are other write transactions active"
    assert st.wal_size() == 0
    st.close()


def test_the_apply_thread_checkpoints_when_the_wal_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_module, "CHECKPOINT_WAL_BYTES", 1)  # every apply is "past the limit"
    paths = HomePaths(tmp_path)
    paths.ensure()
    engine = Engine(paths, DuckDBStorage(paths.db))

    async def scenario() -> tuple[int, int]:
        engine.runner.committer.start()
        engine.tenancy.bootstrap("root")
        await engine.runner.committer.seal()
        ctx = Caller("root", "root", "default")
        for _ in range(5):
            await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 1, 1))
            await engine.runner.committer.sync()
        n = engine.runner.committer.checkpoints
        wal = engine.runner.storage.wal_size()  # type: ignore[attr-defined]
        await engine.runner.committer.close()
        return n, wal

    checkpoints, wal = asyncio.run(scenario())
    engine.runner.storage.close()
    assert checkpoints >= 5 and wal == 0
