"""Runs of chunk-row inserts are written as one statement, in their place in the order (docs/search.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.storage.base import Delete, Insert, Update, WriteRejected
from core.storage.duckdb_store import BULK_RUN, DuckDBStorage


def _row(cid: int, path: str, text: str = "x") -> Insert:
    return Insert("code_chunks", {"tenant_id": "t", "project": "p", "chunk_id": cid, "path": path, "start_line": 1,
                                  "end_line": 2, "language": "python", "kind": "function", "symbol": f"f{cid}",
                                  "signature": "def f():", "part": 0, "hash": f"{cid:064x}", "text": text,
                                  "dense": False})


@pytest.fixture
def st(tmp_path: Path) -> Iterator[DuckDBStorage]:
    s = DuckDBStorage(tmp_path / "db.duckdb")
    try:
        yield s
    finally:
        s.close()


def test_bulk_runs_keep_the_order_of_deletes_and_inserts(st: DuckDBStorage) -> None:
    n = BULK_RUN * 2
    st.apply([_row(i, "a.py", "old") for i in range(n)])
    # One transaction: delete a.py's rows, insert new ones (a run), mark some dense, delete again, insert.
    st.apply([Delete("code_chunks", {"tenant_id": "t", "project": "p", "path": "a.py"}),
              *[_row(100 + i, "a.py", "new") for i in range(n)],
              Update("code_chunks", {"dense": True}, {"tenant_id": "t", "project": "p",
                                                      "chunk_id": ("in", [100, 101, 102])}),
              Delete("code_chunks", {"tenant_id": "t", "project": "p", "chunk_id": 105}),
              *[_row(200 + i, "b.py", "tab\t\"quote\" ünï \\ ") for i in range(n)]])
    rows = st.code_chunk_keys("t", "p")
    ids = [r[0] for r in rows]
    assert ids == [100 + i for i in range(n) if i != 5] + [200 + i for i in range(n)]
    assert [r[0] for r in rows if r[3]] == [100, 101, 102]
    assert st.code_counts("t", "p") == (0, 2 * n - 1, 3)
    texts = {r[0]: r[-1] for r in st.code_chunk_rows("t", "p")}
    assert texts[100] == "new" and texts[200] == "tab\t\"quote\" ünï \\ "


def test_a_refused_bulk_run_changes_nothing(st: DuckDBStorage) -> None:
    st.apply([_row(1, "a.py")])
    with pytest.raises(WriteRejected):  # chunk id 1 again: the primary key refuses the whole transaction
        st.apply([Delete("code_chunks", {"tenant_id": "t", "project": "p", "path": "z.py"}),
                  *[_row(i, "c.py") for i in range(1, BULK_RUN + 2)]])
    assert [r[0] for r in st.code_chunk_keys("t", "p")] == [1]


def test_an_empty_in_list_matches_nothing(st: DuckDBStorage) -> None:
    st.apply([_row(1, "a.py")])
    st.apply([Update("code_chunks", {"dense": True}, {"tenant_id": "t", "project": "p", "chunk_id": ("in", [])})])
    assert st.code_counts("t", "p")[2] == 0


def test_chunk_reads_page_through_the_table_in_id_order(st: DuckDBStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DuckDBStorage, "CODE_PAGE", 7)
    st.apply([_row(i, f"f{i % 3}.py") for i in range(50, 0, -1)])  # written out of order
    st.apply([Update("code_chunks", {"dense": True}, {"tenant_id": "t", "project": "p",
                                                      "chunk_id": ("in", list(range(1, 51, 2)))})])
    assert [r[0] for r in st.code_chunk_rows("t", "p")] == list(range(1, 51))
    assert [r[0] for r in st.code_pending("t", "p")] == list(range(2, 51, 2))
    assert len(st.code_chunk_keys("t", "p")) == len(st.code_chunk_ids("t", "p")) == 50
