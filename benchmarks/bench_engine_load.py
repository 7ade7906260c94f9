"""Engine under load: 100 tenants, 8 concurrent clients over the socket, mixed operations.

Mix per request: 50 % usage record, 30 % quota status, 20 % audit list (limit 20),
each against a random tenant.  The same client harness first hammers
``/v1/health`` (no engine work, no DB) for the baseline of the socket + HTTP
floor in this run.  Targets (issue 2): p95 <= 25 ms and >= 1,500 acknowledged
usage records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import pct, table, temp_home  # noqa: E402


async def _client(sock: str, deadline: float, picker, lat: dict[str, list[float]], seed: int) -> None:
    import aiohttp

    rnd = random.Random(seed)
    conn = aiohttp.UnixConnector(path=sock, limit=1)
    async with aiohttp.ClientSession(connector=conn) as s:
        while time.perf_counter() < deadline:
            kind, method, path, body, headers = picker(rnd)
            t0 = time.perf_counter()
            async with s.request(method, "http://m" + path, json=body, headers=headers) as r:
                await r.read()
                ok = r.status < 300
            dt = time.perf_counter() - t0
            lat.setdefault(kind if ok else kind + " (refused)", []).append(dt)


async def _run(sock: str, clients: int, seconds: float, picker) -> tuple[dict[str, list[float]], float]:
    lat: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(*[_client(sock, deadline, picker, lat, i) for i in range(clients)])
    return lat, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    args = ap.parse_args()

    from core.client import EngineClient, Identity, start_engine, stop_engine
    from core.paths import HomePaths

    with temp_home() as home:
        paths = HomePaths(home)
        start_engine(paths)
        try:
            c = EngineClient(paths)
            tenants = [f"t{i:03d}" for i in range(args.tenants)]
            for t in tenants:
                c.post("/v1/tenants", {"name": t})
                tc = EngineClient(paths, Identity(tenant=t))
                tc.put("/v1/quotas", {"metric": "tokens", "limit": 10**12, "period": "day"})
                tc.put("/v1/quotas", {"metric": "requests", "limit": 10**12, "period": "hour"})
            sock = str(paths.socket)

            def health(rnd: random.Random):
                return "health", "GET", "/v1/health", None, {}

            def mixed(rnd: random.Random):
                t = rnd.choice(tenants)
                h = {"X-Musubi-Tenant": t}
                x = rnd.random()
                if x < 0.5:
                    body = {"model": "gpt-4o", "input_tokens": rnd.randint(10, 2000), "output_tokens": rnd.randint(1, 500)}
                    return "usage record", "POST", "/v1/usage", body, h
                if x < 0.8:
                    return "quota status", "GET", "/v1/quotas", None, h
                return "audit list", "GET", "/v1/audit?limit=20", None, h

            base, base_dt = asyncio.run(_run(sock, args.clients, args.baseline_seconds, health))
            lat, dt = asyncio.run(_run(sock, args.clients, args.seconds, mixed))
            verify = c.post("/v1/audit/verify")
        finally:
            stop_engine(paths)

    rows = []
    b = base["health"]
    b95 = pct(b, 95)
    rows.append(["baseline: GET /v1/health", len(b) / base_dt, pct(b, 50) * 1e3, b95 * 1e3, pct(b, 99) * 1e3, 1.0])
    allv = [v for vs in lat.values() for v in vs]
    for kind in sorted(lat):
        v = lat[kind]
        rows.append([kind, len(v) / dt, pct(v, 50) * 1e3, pct(v, 95) * 1e3, pct(v, 99) * 1e3, pct(v, 95) / b95])
    rows.append(["all mixed", len(allv) / dt, pct(allv, 50) * 1e3, pct(allv, 95) * 1e3, pct(allv, 99) * 1e3, pct(allv, 95) / b95])
    print(
        table(
            f"Engine load: {args.tenants} tenants x {args.clients} concurrent clients, {args.seconds:.0f}s",
            ["operation", "req/s", "p50 ms", "p95 ms", "p99 ms", "p95 / baseline p95"],
            rows,
        )
    )
    rec = len(lat.get("usage record", [])) / dt
    print(f"\nacknowledged usage records/s: {rec:,.0f} (target >= 1,500); "
          f"mixed p95: {pct(allv, 95) * 1e3:.1f} ms (target <= 25 ms); audit chain of 'default' ok: {verify['ok']}")
    print(json.dumps({"usage_records_per_s": round(rec), "p95_ms": round(pct(allv, 95) * 1e3, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
