"""Bounded memory: the engine's RSS after 1M acknowledged usage records vs after 10k, same run.

Concurrent keep-alive clients record usage over the socket (spread over several
tenants) until ``--records`` are acknowledged.  At each mark the benchmark waits
until DuckDB holds every write (a read that needs the database), then reads the
engine's RSS (``VmRSS`` of its pid) and the size of DuckDB's own WAL.  Target
(issue 9, item 7): RSS at the last mark <= 1.2x RSS at the first (``--baseline``,
10,000 records), and a DuckDB WAL that does not grow with the records (it is
checkpointed while the engine runs).  Also: restart time (graceful stop, then
start until ``/v1/health`` answers) of the home holding all records, against a
home holding ``--baseline`` records restarted in the same run.

``--records 100000`` is a quick check; the full 1,000,000 takes several minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import roundtrip, table, temp_home  # noqa: E402
from benchmarks.bench_engine_load import _request_bytes  # noqa: E402

TENANTS = 10


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":", 1)
            vals[k] = int(v.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def _wal_mb(db: Path) -> float:
    p = db.with_name(db.name + ".wal")
    return p.stat().st_size / 2**20 if p.exists() else 0.0


async def _record(
    sock: str, tenants: list[str], target: int, counter: list[int], clients: int
) -> int:
    """Record usage until ``counter[0]`` reaches ``target``; returns refusals (should be 0)."""
    refused = [0]

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_unix_connection(sock)
        reqs = [
            _request_bytes(
                "POST",
                "/v1/usage",
                {"model": "gpt-4.1-mini", "input_tokens": 100 + i, "output_tokens": 20},
                {"X-Musubi-Tenant": t},
            )
            for t in tenants
        ]
        n = i
        try:
            while counter[0] < target:
                counter[0] += 1
                n += 1
                if await roundtrip(reader, writer, reqs[n % len(reqs)]) >= b"300":
                    refused[0] += 1
        finally:
            writer.close()

    await asyncio.gather(*[one(i) for i in range(clients)])
    return refused[0]


def _setup(paths: Any) -> list[str]:
    from core.client import EngineClient, Identity

    c = EngineClient(paths)
    tenants = [f"m{i:02d}" for i in range(TENANTS)]
    for t in tenants:
        c.post("/v1/tenants", {"name": t})
        tc = EngineClient(paths, Identity(tenant=t))
        tc.put("/v1/quotas", {"metric": "tokens", "limit": 10**15, "period": "day"})
        tc.put("/v1/quotas", {"metric": "requests", "limit": 10**15, "period": "hour"})
    return tenants


def _caught_up(paths: Any, tenant: str) -> None:
    """Wait until DuckDB holds every acknowledged write (this read waits for the apply)."""
    from core.client import EngineClient, Identity

    EngineClient(paths, Identity(tenant=tenant), timeout=600).get(
        "/v1/usage/history", {"bucket": "month", "since_hours": 1}
    )


def _restart(paths: Any) -> tuple[float, float]:
    """(seconds for a graceful stop, seconds for a start until health answers)."""
    from core.client import start_engine, stop_engine

    t0 = time.perf_counter()
    stop_engine(paths)
    t1 = time.perf_counter()
    start_engine(paths, timeout=600)
    return t1 - t0, time.perf_counter() - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--baseline", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    if args.records <= args.baseline:
        ap.error("--records must be larger than --baseline")

    from core.client import ping, start_engine, stop_engine
    from core.paths import HomePaths

    marks = sorted(
        {
            args.baseline,
            args.records,
            *(int(args.records * f) for f in (0.1, 0.3, 0.6) if args.records * f > args.baseline),
        }
    )
    rows: list[list[object]] = []
    with temp_home("mm") as home, temp_home("mb") as small:
        # Restart baseline: a home holding --baseline records.
        spaths = HomePaths(small)
        start_engine(spaths)
        try:
            stenants = _setup(spaths)
            asyncio.run(_record(str(spaths.socket), stenants, args.baseline, [0], args.clients))
            _caught_up(spaths, stenants[0])
            small_stop, small_start = _restart(spaths)
        finally:
            stop_engine(spaths)

        paths = HomePaths(home)
        start_engine(paths)
        try:
            tenants = _setup(paths)
            pid = int((ping(paths) or {})["pid"])
            counter = [0]
            refused = 0
            t_prev, n_prev = time.perf_counter(), 0
            for mark in marks:
                refused += asyncio.run(
                    _record(str(paths.socket), tenants, mark, counter, args.clients)
                )
                dt = time.perf_counter() - t_prev
                _caught_up(paths, tenants[0])
                time.sleep(1.0)
                rss, hwm = _rss_mb(pid)
                rows.append([mark, rss, hwm, _wal_mb(paths.db), (mark - n_prev) / dt])
                print(
                    f"  {mark:,} records: RSS {rss:.0f} MB, DuckDB WAL {_wal_mb(paths.db):.1f} MB",
                    flush=True,
                )
                t_prev, n_prev = time.perf_counter(), mark
            db_mb = paths.db.stat().st_size / 2**20
            big_stop, big_start = _restart(paths)
            rss_after_restart = _rss_mb(int((ping(paths) or {})["pid"]))[0]
        finally:
            stop_engine(paths)

    base_rss = float(rows[0][1])  # type: ignore[arg-type]
    out = [[f"{r[0]:,} records", r[1], r[2], float(r[1]) / base_rss, r[3], r[4]] for r in rows]  # type: ignore[arg-type]
    print(
        table(
            f"Engine memory: {args.records:,} usage records over {TENANTS} tenants, {args.clients} clients "
            f"(database file {db_mb:.0f} MB at the end)",
            ["after", "RSS MB", "peak RSS MB", "RSS / baseline", "DuckDB WAL MB", "records/s"],
            out,
        )
    )
    print(
        table(
            "Restart (graceful stop, then start until /v1/health answers)",
            ["home", "stop s", "start s", "start / baseline"],
            [
                [f"{args.baseline:,} records (baseline)", small_stop, small_start, 1.0],
                [f"{args.records:,} records", big_stop, big_start, big_start / small_start],
            ],
        )
    )
    ratio = float(rows[-1][1]) / base_rss
    print(
        f"\nRSS after {args.records:,} = {ratio:.2f}x RSS after {args.baseline:,} (target <= 1.2); "
        f"RSS right after the restart {rss_after_restart:.0f} MB; refused writes: {refused}"
    )
    print(
        json.dumps(
            {
                "rss_ratio": round(ratio, 3),
                "rss_mb": [round(float(r[1]), 1) for r in rows],
                "wal_mb_max": round(max(float(r[3]) for r in rows), 1),  # type: ignore[arg-type]
                "restart_s": round(big_start, 2),
                "restart_baseline_s": round(small_start, 2),
            }
        )
    )
    return 0 if ratio <= 1.2 and not refused else 1


if __name__ == "__main__":
    raise SystemExit(main())
