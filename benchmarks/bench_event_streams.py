"""Write throughput with open event streams (issue 9, item 8: "300 idle streams cut write throughput 2.5x").

Acknowledged usage records per second from 8 concurrent clients over 50 tenants,
measured in the same run with:

- no event stream open (the baseline);
- N idle streams: ``GET /v1/events`` of a tenant nobody writes to (a TUI left open
  on another tenant) — the target is no cost per write (ratio ~1.0);
- N listening streams spread over the written tenants, read by this process (every
  write goes to N/50 of them): what delivering events costs, for comparison;
- N stalled streams on the written tenants whose clients never read (the probe of the
  issue): the engine drops each once it is 1000 events behind, so they stop costing.

The engine's stream caps are raised for the run (``MUSUBI_MAX_STREAMS``), since one
OS user opens all streams.  Rounds alternate to even out this machine's drift.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import median, table, temp_home  # noqa: E402
from benchmarks.bench_engine_load import PICKERS, _only, _run  # noqa: E402


async def _open_streams(sock: str, tenants: list[str], n: int, ready: threading.Event, stop: threading.Event,
                        read: bool) -> None:
    async def one(i: int) -> None:
        reader, writer = await asyncio.open_unix_connection(sock)
        t = tenants[i % len(tenants)]
        writer.write(f"GET /v1/events HTTP/1.1\r\nHost: m\r\nX-Musubi-Tenant: {t}\r\n\r\n".encode())
        status = await reader.readline()
        assert b" 200 " in status, status
        while not stop.is_set():
            if not read:
                await asyncio.sleep(0.2)
            elif not await reader.read(65536):
                break
        writer.close()

    tasks = []
    for i in range(n):  # one by one: a burst of connects would overflow the listen backlog
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0.002)
    await asyncio.sleep(1.0)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for t in tasks:
        t.cancel()


def _streams(sock: str, tenants: list[str], n: int, read: bool = True) -> tuple[threading.Event, threading.Thread]:
    ready, stop = threading.Event(), threading.Event()
    th = threading.Thread(target=lambda: asyncio.run(_open_streams(sock, tenants, n, ready, stop, read)), daemon=True)
    th.start()
    if not ready.wait(60):
        raise SystemExit("could not open the streams")
    return stop, th


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, default=300)
    ap.add_argument("--tenants", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    os.environ["MUSUBI_MAX_STREAMS"] = str(args.streams + 10)
    os.environ["MUSUBI_MAX_STREAMS_PER_USER"] = str(args.streams + 10)

    from core.client import EngineClient, Identity, start_engine, stop_engine
    from core.paths import HomePaths

    PICKERS["only"] = _only("usage record")
    results: dict[str, list[float]] = {"no streams": [], f"{args.streams} idle streams": [],
                                       f"{args.streams} listening streams": [], f"{args.streams} stalled streams": []}
    with temp_home() as home:
        paths = HomePaths(home)
        start_engine(paths)
        try:
            c = EngineClient(paths)
            tenants = [f"t{i:03d}" for i in range(args.tenants)]
            for t in [*tenants, "quiet"]:
                c.post("/v1/tenants", {"name": t})
                tc = EngineClient(paths, Identity(tenant=t))
                tc.put("/v1/quotas", {"metric": "tokens", "limit": 10**12, "period": "day"})
                tc.put("/v1/quotas", {"metric": "requests", "limit": 10**12, "period": "hour"})
            sock = str(paths.socket)

            def measure(label: str) -> None:
                lat, dt = _run(sock, args.clients, 1, args.seconds, "only", tenants)
                results[label].append(len(lat.get("usage record", [])) / dt)

            for _ in range(args.rounds):
                measure("no streams")
                stop, th = _streams(sock, ["quiet"], args.streams)
                subs = EngineClient(paths).get("/v1/health")["subscribers"]
                if subs != args.streams:
                    raise SystemExit(
                        f"only {subs} of {args.streams} streams are open (file descriptor limit? ulimit -n)"
                    )
                measure(f"{args.streams} idle streams")
                stop.set()
                th.join(10)
                stop, th = _streams(sock, tenants, args.streams)
                measure(f"{args.streams} listening streams")
                stop.set()
                th.join(10)
                time.sleep(2)  # let the engine notice the closed streams
                stop, th = _streams(sock, tenants, args.streams, read=False)
                measure(f"{args.streams} stalled streams")
                stop.set()
                th.join(10)
                time.sleep(2)
        finally:
            stop_engine(paths)
    base = median(results["no streams"])
    rows = [[k, median(v), median(v) / base, ", ".join(f"{x:,.0f}" for x in v)] for k, v in results.items()]
    print(
        table(
            f"Usage records/s, {args.clients} clients over {args.tenants} tenants,"
            f" {args.seconds:.0f}s x {args.rounds} rounds",
            ["open streams", "records/s (median)", "ratio to none", "rounds"],
            rows,
        )
    )
    print(json.dumps({k: round(median(v)) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
