"""Audit append throughput vs raw DuckDB inserts, and chain verification speed.

1. Append: the engine's path (hash-chain each event, queue it, group commit of
   N events: journal write + fsync, then applied to DuckDB) until every event is
   in DuckDB, against a raw DuckDB
   multi-row INSERT of the very same rows in batches of the same size into an
   identical table, same run.  Target: ours >= 50 % of raw.
2. Verify: events/s of the engine's verification over a chain in the DuckDB
   file, against the raw fetch of the same rows (the floor).  Target: >= 200,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import table, temp_home  # noqa: E402

COLS = ("tenant_id", "seq", "ts", "actor", "action", "resource", "outcome", "details", "prev_hash", "hash")
DDL = (
    "CREATE TABLE audit_log (tenant_id VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, "
    "action VARCHAR NOT NULL, resource VARCHAR NOT NULL, outcome VARCHAR NOT NULL, details JSON NOT NULL, "
    "prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL)"
)
STRUCT = json.dumps([{c: ("BIGINT" if c == "seq" else "VARCHAR") for c in COLS}])
INSERT_JSON = (
    "INSERT INTO audit_log SELECT r.tenant_id, r.seq, CAST(r.ts AS TIMESTAMP), r.actor, r.action, r.resource, "
    "r.outcome, CAST(r.details AS JSON), r.prev_hash, r.hash FROM (SELECT unnest(from_json(?, ?)) AS r)"
)


CHUNK = 20_000  # events built and inserted at a time


def _json_rows(rows: list[tuple]) -> str:
    return json.dumps(
        [dict(zip(COLS, (v.isoformat() if hasattr(v, "isoformat") else v for v in r), strict=True)) for r in rows],
        ensure_ascii=False,
    )


def bench_append(home: Path, n: int, batch: int) -> tuple[float, float]:
    import duckdb

    from core.engine.engine import Engine
    from core.paths import HomePaths
    from core.storage.duckdb_store import DuckDBStorage

    paths = HomePaths(home / "append")
    paths.ensure()
    storage = DuckDBStorage(paths.db)
    engine = Engine(paths, storage)
    engine.tenancy.bootstrap("bench")

    async def ours() -> float:
        engine.runner.committer.start()
        await engine.runner.committer.seal()
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            for j in range(i, min(n, i + batch)):
                engine.runner.audit("default", "bench", "usage.record", f"model:m{j % 7}", details={"tokens": j, "requests": 1})
            await engine.runner.committer.seal()
        await engine.runner.committer.sync()  # every event is in DuckDB, not only in the journal
        dt = time.perf_counter() - t0
        await engine.runner.committer.close()
        return dt

    t_ours = asyncio.run(ours())
    rows = storage.con.execute(
        "SELECT tenant_id, seq, ts, actor, action, resource, outcome, details, prev_hash, hash FROM audit_log "
        "WHERE action = 'usage.record' ORDER BY seq"
    ).fetchall()
    storage.close()

    # Raw baseline: the same rows into an identical table, one transaction per
    # batch, each batch bound as a single JSON parameter (the fastest way we
    # know to get many rows into DuckDB from Python without pandas/pyarrow).
    raw = duckdb.connect(str(home / "raw.duckdb"))
    raw.execute(DDL)
    payloads = [_json_rows(rows[i : i + batch]) for i in range(0, len(rows), batch)]
    t0 = time.perf_counter()
    for payload in payloads:
        raw.execute("BEGIN")
        raw.execute(INSERT_JSON, [payload, STRUCT])
        raw.execute("COMMIT")
    t_raw = time.perf_counter() - t0
    raw.close()
    return n / t_ours, len(rows) / t_raw


def bench_verify(home: Path, n: int) -> tuple[float, float, float, bool]:
    from core.audit import GENESIS_HASH, make_event, verify_joined, verify_rows
    from core.paths import HomePaths
    from core.storage.duckdb_store import DuckDBStorage

    paths = HomePaths(home / "verify")
    paths.ensure()
    storage = DuckDBStorage(paths.db)
    # Build a valid chain quickly with the same event builder the engine uses, CHUNK events at a time
    # (the Python side's memory stays flat whatever --verify-events says).
    from datetime import datetime, timedelta

    prev = GENESIS_HASH
    t = datetime(2026, 1, 1)
    con = storage.con
    con.execute("BEGIN")
    for k in range(1, n + 1, CHUNK):
        rows = []
        for i in range(k, min(n, k + CHUNK - 1) + 1):
            ev = make_event("t1", i, t + timedelta(microseconds=i), "alice", "usage.record", "model:x", "success",
                            {"tokens": i}, prev)
            prev = ev.hash
            rows.append((ev.tenant_id, ev.seq, ev.ts, ev.actor, ev.action, ev.resource, ev.outcome, ev.details,
                         ev.prev_hash, ev.hash))
        con.execute(INSERT_JSON, [_json_rows(rows), STRUCT])
    con.execute("COMMIT")
    con.execute("CHECKPOINT")

    t0 = time.perf_counter()
    res = verify_joined(
        "t1", storage.audit_chain_joined("t1", 1), 1, GENESIS_HASH,
        lambda seq: storage.audit_row("t1", seq), lambda lo, hi: storage.audit_seqs("t1", lo, hi),
    )
    t_verify = time.perf_counter() - t0
    # The pure-Python reference walk, for the record (the docs' "few lines of code").
    t0 = time.perf_counter()
    ref = verify_rows("t1", storage.audit_chain("t1", 1), 1, GENESIS_HASH)
    t_ref = time.perf_counter() - t0

    # The floor: the same rows fetched into Python, paged as the storage's walk pages them (one ORDER BY
    # over the whole chain runs out of the engine's 64 MB DuckDB memory limit at this size).
    t0 = time.perf_counter()
    m = sum(1 for _ in storage.audit_chain("t1", 1))
    t_fetch = time.perf_counter() - t0
    storage.close()
    return res.checked / t_verify, m / t_fetch, ref.checked / t_ref, res.ok and ref.ok and res.checked == n == ref.checked == m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000, help="events appended")
    ap.add_argument("--batch", type=int, default=100, help="events per group commit")
    ap.add_argument("--verify-events", type=int, default=300_000)
    args = ap.parse_args()
    with temp_home() as home:
        ours, raw = bench_append(home, args.events, args.batch)
        v_rate, f_rate, r_rate, ok = bench_verify(home, args.verify_events)
    print(
        table(
            "Audit append (events/s, same rows, same batch size)",
            ["path", "events/s", "ratio vs raw", "target"],
            [["raw DuckDB insert", raw, 1.0, ""], ["engine audit append", ours, ours / raw, ">= 0.50"]],
        )
    )
    print()
    print(
        table(
            f"Audit verify ({args.verify_events:,} events)",
            ["path", "events/s", "ratio vs fetch", "target"],
            [
                ["raw fetch of the rows into Python", f_rate, 1.0, ""],
                ["reference Python walk (core.audit.verify_rows)", r_rate, r_rate / f_rate, ""],
                ["engine verify (joined chunks)", v_rate, v_rate / f_rate, ">= 200,000/s"],
            ],
        )
    )
    if not ok:
        print("verification did not pass on a valid chain", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
