"""apply_groups: good groups applied in order, refused ones quarantined, a full disk retried instead."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.engine.journal import APPLIED_KEY
from core.engine.quarantine import apply_groups, read_group
from core.errors import StorageError
from core.storage.base import Insert, Mutation, Update
from core.storage.duckdb_store import DuckDBStorage

NOW = datetime(2026, 12, 6, 1, 0, 0)


def _good(i: int) -> list[Mutation]:
    return [
        Insert("engine_meta", {"key": f"k{i}", "value": "a"}),
        Update("engine_meta", {"value": f"v{i}"}, {"key": f"k{i}"}),
    ]


def _bad(i: int) -> list[Mutation]:
    return [
        Insert("engine_meta", {"key": f"b{i}", "value": "x"}),
        Insert("engine_meta", {"key": f"b{i}", "value": "dup"}),
    ]


def _keys(st: DuckDBStorage) -> dict[str, str]:
    return dict(
        st.con.execute(
            "SELECT key, value FROM engine_meta WHERE key <> ?", [APPLIED_KEY]
        ).fetchall()
    )


def test_refused_groups_are_quarantined_and_the_rest_applied_in_order(tmp_path: Path) -> None:
    st = DuckDBStorage(tmp_path / "db.duckdb")
    groups = [(n, _bad(n) if n in (3, 7, 8) else _good(n)) for n in range(1, 11)]
    # A later group that depends on an earlier one: it must come after it.
    groups.append((11, [Update("engine_meta", {"value": "after"}, {"key": "k10"})]))
    res = apply_groups(st, groups, tmp_path, NOW)
    assert res.error is None and res.done == len(groups)
    assert [q.group for q in res.quarantined] == [3, 7, 8]
    keys = _keys(st)
    assert not any(k.startswith("b") for k in keys)  # a refused group is kept whole
    assert keys == {**{f"k{n}": f"v{n}" for n in (1, 2, 4, 5, 6, 9)}, "k10": "after"}
    assert st.meta_value(APPLIED_KEY) == "11"
    rows = st.quarantined()
    assert [r["group_no"] for r in rows] == [3, 7, 8] and rows[0]["file"] == "quarantine/3.json"
    assert "duplicate key" in rows[0]["error"].lower()
    assert read_group(tmp_path / "quarantine" / "7.json") == (7, _bad(7))
    assert oct((tmp_path / "quarantine" / "7.json").stat().st_mode & 0o777) == "0o600"
    st.close()


class FullDisk:
    """A storage whose transactions fail like a full disk from call ``at`` on."""

    def __init__(self, inner: DuckDBStorage, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def apply(self, mutations: Sequence[Mutation], meta: dict[str, str] | None = None) -> None:
        self.calls += 1
        if self.calls >= self.at:
            raise StorageError(
                "could not write: IO Error: No space left on device", code="write_failed"
            )
        self.inner.apply(mutations, meta)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("at", [1, 2, 3])
def test_a_full_disk_is_never_taken_for_a_refused_group(tmp_path: Path, at: int) -> None:
    inner = DuckDBStorage(tmp_path / "db.duckdb")
    groups = [(n, _bad(n) if n == 2 else _good(n)) for n in range(1, 5)]
    st = FullDisk(inner, at)
    res = apply_groups(st, groups, tmp_path, NOW)  # type: ignore[arg-type]
    assert isinstance(res.error, StorageError) and res.error.code == "write_failed"
    assert res.quarantined == [] and inner.quarantined() == []
    applied = int(inner.meta_value(APPLIED_KEY) or 0)
    assert applied == (groups[res.done - 1][0] if res.done else 0)  # storage and `done` agree
    # Once the disk has room again, the same groups go in, the refused one quarantined.
    res2 = apply_groups(inner, groups[res.done :], tmp_path, NOW)
    assert res2.error is None and [q.group for q in (res.quarantined + res2.quarantined)] == [2]
    assert set(_keys(inner)) == {"k1", "k3", "k4"}
    doc = json.loads((tmp_path / "quarantine" / "2.json").read_text())
    assert doc["group"] == 2 and doc["journal"]["n"] == 2
    inner.close()
