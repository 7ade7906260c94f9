"""``DuckDBStorage.audit_chain`` walks the chain a page at a time: one ORDER BY over 300,000 events ran out of
the engine's 64 MB DuckDB memory limit (benchmarks/bench_audit.py's default).  Here the page boundaries are
checked with tiny pages: every event once, in order, from any start, across gaps (pruned events)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.audit import GENESIS_HASH, verify_rows
from core.storage.duckdb_store import DuckDBStorage
from tests.unit.test_storage_checkpoint import _events


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 11, 50])
def test_every_event_once_in_order_across_pages(tmp_path: Path, chunk: int) -> None:
    st = DuckDBStorage(tmp_path / "db.duckdb")
    st.apply(_events(10), meta={"journal_applied": "1"})
    try:
        assert [r[0] for r in st.audit_chain("t", 1, chunk=chunk)] == list(range(1, 11))
        assert [r[0] for r in st.audit_chain("t", 4, chunk=chunk)] == list(range(4, 11))
        assert list(st.audit_chain("t", 11, chunk=chunk)) == []
        assert list(st.audit_chain("other", 1, chunk=chunk)) == []
        assert verify_rows("t", st.audit_chain("t", 1, chunk=chunk), 1, GENESIS_HASH).checked == 10
        st.con.execute("DELETE FROM audit_log WHERE seq IN (2, 3, 6)")  # gaps, as a prune leaves below its cut
        assert [r[0] for r in st.audit_chain("t", 1, chunk=chunk)] == [1, 4, 5, 7, 8, 9, 10]
    finally:
        st.close()
