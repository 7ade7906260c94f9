"""The audit filter (``core.api.auditfilter``) and the storage's SQL select the same events.

The engine answers recent listings from memory with :class:`AuditFilter` and older
ones from DuckDB with ``_audit_filters``; the TUI filters live events with the
former.  Here both run over one chain for a grid of filters and must agree.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.api.auditfilter import AuditFilter, parse_when
from core.audit import format_ts
from core.engine.access import Caller
from core.engine.engine import Engine
from core.errors import BadRequest
from core.paths import HomePaths
from core.storage.base import AuditQuery
from core.storage.duckdb_store import DuckDBStorage

ACTIONS = ("member.add", "member.remove", "quota.set", "usage.record")


def _chain(tmp_path: Path) -> tuple[list[dict[str, Any]], DuckDBStorage]:
    """Some events in tenant 'default' by alice, bob and bob impersonated by carol; all committed."""
    paths = HomePaths(tmp_path)
    paths.ensure()
    storage = DuckDBStorage(paths.db)
    engine = Engine(paths, storage)
    r = engine.runner
    start = r.now()

    async def scenario() -> None:
        r.committer.start()
        engine.tenancy.bootstrap("root")
        await r.committer.seal()
        actors = [Caller("alice", "alice", "default"), Caller("bob", "bob", "default"),
                  Caller("carol", "bob", "default")]
        for i, (actor, action, outcome) in enumerate(itertools.product(actors, ACTIONS, ("success", "denied"))):
            ts = start + timedelta(hours=i)
            r.audit("default", actor, action, f"x:{i}", outcome, {"i": i}, ts=ts)
        await r.committer.seal()
        await r.committer.sync()
        await r.committer.close()

    asyncio.run(scenario())
    rows = storage.audit_list(AuditQuery("default", descending=False))
    return rows, storage


FILTERS: list[dict[str, str]] = [
    {},
    {"actor": "bob"},
    {"actor": "carol"},  # only as the impersonator
    {"actor": "root"},
    {"action": "member.*"},
    {"action": "member.add"},
    {"action": "member"},
    {"outcome": "denied"},
    {"actor": "bob", "action": "quota.*", "outcome": "success"},
]


def test_the_filter_and_the_sql_select_the_same_events(tmp_path: Path) -> None:
    rows, storage = _chain(tmp_path)
    try:
        times = sorted(r["ts"] for r in rows)
        windows = [(None, None), (times[5], None), (None, times[-7]), (times[3], times[20])]
        for f, (since, until) in itertools.product(FILTERS, windows):
            texts = {**f, **({"since": since} if since else {}), **({"until": until} if until else {})}
            flt = AuditFilter.of(texts)
            q = AuditQuery("default", parse_when(since, "since"), parse_when(until, "until"), flt.actor, flt.action,
                           flt.outcome, descending=False)
            from_sql = [r["seq"] for r in storage.audit_list(q)]
            from_filter = [r["seq"] for r in rows if flt.matches(r)]
            assert from_sql == from_filter, texts
        assert [r for r in rows if AuditFilter.of({"actor": "carol"}).matches(r)]  # the grid is not empty
    finally:
        storage.close()


def test_filter_text_is_checked_with_the_field_named() -> None:
    with pytest.raises(BadRequest) as e:
        AuditFilter.of({"outcome": "maybe"})
    assert e.value.extra["field"] == "outcome"
    with pytest.raises(BadRequest) as e:
        AuditFilter.of({"since": "yesterday"})
    assert e.value.extra["field"] == "since"
    # A date alone is midnight UTC; an offset is converted to UTC.
    assert AuditFilter.of({"since": "2026-01-02"}).since == "2026-01-02T00:00:00.000000Z"
    one_am = format_ts(parse_when("2026-01-02T01:00", "x"))  # type: ignore[arg-type]
    assert AuditFilter.of({"until": "2026-01-02T03:00:00+02:00"}).until == one_am
