"""Orchestration runs: engine overhead per model call, and many runs at once (docs/runs.md).

1. **Overhead per call**: one run of ``--calls`` sequential model calls through the engine (RBAC,
   router, budgets and caps, quota reservation, the call row committed before dispatch, the
   streamed call through the real OpenAI provider, settle + ledger + call record + audit committed
   after it) against the same number of direct aiohttp streaming calls to the same fake server in
   the same run.  Per engine call: the time between the ends of consecutive calls (everything the
   engine does per call, both group commits included).  Target: p95 added <= 5 ms.  The floor is
   printed with it, measured in the same run: a bare ``fdatasync`` of a journal-sized append on
   the home's disk.  A sequential run cannot go faster than one durable group commit per call
   (the request may leave while its ``sent`` row is synced, but its answer is charged only once
   that row is durable, docs/runs.md#charge-once), so the per-call time is about max(fsync,
   provider latency) plus the engine's CPU work.
2. **Concurrency**: ``--runs`` runs of 3 calls on ``--tenants`` tenants at once against a fake that
   answers after ``--latency`` s: every call charged exactly once (the fake's completed streams =
   ok call records = ledger rows with a run id, tokens equal), and the lag of ``run.*`` events on
   one stream per tenant (received minus the engine's ``ts``).  Target: p95 lag < 100 ms.

Uses the fake OpenAI server of tests/fakes/llm_servers.py and the runs test hook's workflows
(no scripted provider: calls go through the real provider).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import pct, table, temp_home  # noqa: E402

KEY = "sk-bench-KEY"
COMMITS_PER_CALL: dict[str, float] = {}  # journal group commits per model call, by part (same run)
MODEL = "gpt-6-luna"
ENTRY_POINTS = {
    "openai": "connectors.llm.openai:openai_provider",
    "azure-openai": "connectors.llm.openai:azure_openai_provider",
    "anthropic": "connectors.llm.anthropic:anthropic_provider",
    "openai-compatible": "connectors.llm.openai:openai_compatible_provider",
    "replay": "connectors.llm.replay:replay_provider",
}
WORKFLOWS = {
    "loop": {"agents": {"writer": {"task_kind": "summarise"}},
             "steps": [{"id": "loop", "type": "test.loop", "agents": ["writer"], "options": {"n": 100}}]},
    "three": {"agents": {"writer": {"task_kind": "summarise"}},
              "steps": [{"id": f"s{i}", "agents": ["writer"]} for i in (1, 2, 3)]},
}


def _shim(d: Path) -> str | None:
    """The provider entry points for an engine of a venv not reinstalled since they were added."""
    have = {ep.name for ep in importlib.metadata.entry_points(group="musubi.providers")}
    if set(ENTRY_POINTS) <= have:
        return None
    info = d / "musubi_bench_providers-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: musubi-bench-providers\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[musubi.providers]\n" + "".join(f"{k} = {v}\n"
                                                                           for k, v in ENTRY_POINTS.items()))
    return str(d)


def _raw(paths: Any, method: str, path: str, body: Any = None, tenant: str | None = None) -> Any:
    from core.client import EngineClient, Identity

    c = EngineClient(paths, Identity(tenant=tenant, cwd="/"), autostart=False, timeout=60)
    if method == "PUT":
        return c.request("PUT", path, body=body)
    return c.post(path, body) if method == "POST" else c.get(path)


def _roomy(paths: Any, tenant: str) -> None:
    """Quotas far above what the benchmark uses (new tenants start with 100 requests an hour)."""
    for metric, limit, period in (("requests", 10**9, "hour"), ("tokens", 10**12, "day")):
        _raw(paths, "PUT", "/v1/quotas", {"metric": metric, "limit": limit, "period": period}, tenant=tenant)


async def _direct(base: str, n: int) -> list[float]:
    import aiohttp

    body = {"model": MODEL, "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
            "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 4096}
    out = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as s:
        for _ in range(n):
            t0 = time.perf_counter()
            async with s.post(f"{base}/chat/completions", json=body) as r:
                async for _chunk in r.content.iter_any():
                    pass
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _fsync_floor(d: Path, n: int, size: int = 2048) -> list[float]:
    """A bare append + ``fdatasync`` of a journal-sized line on the home's disk, ``n`` times (ms each)."""
    line = b"x" * (size - 1) + b"\n"
    out = []
    fd = os.open(d / "fsync-floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, line)
            os.fdatasync(fd)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
    return out


async def _commit_floor(d: Path, n: int, size: int = 2048) -> list[float]:
    """The same append made durable the engine's way (its fdatasync helper process, a pipe round trip)."""
    from core.engine.syncer import SyncHelper

    line = b"x" * (size - 1) + b"\n"
    out = []
    fd = os.open(d / "commit-floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    helper = SyncHelper(fd)
    try:
        await helper.sync()  # start the helper
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, line)
            await helper.sync()
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        helper.close()
        os.close(fd)
    return out


def _wait(paths: Any, tenant: str, rid: str, timeout: float = 600) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        r = _raw(paths, "GET", f"/v1/runs/{rid}", tenant=tenant)
        if r["state"] in ("done", "failed", "stopped", "cancelled"):
            return dict(r)
        time.sleep(0.05)
    raise TimeoutError(rid)


def _stream(paths: Any, tenant: str, lags: list[float], stop: threading.Event, ready: threading.Event) -> None:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(paths.socket))

    c = Conn("localhost", timeout=120)
    c.request("GET", "/v1/events?types=run.state,run.step,run.call,run.output",
              headers={"X-Musubi-Tenant": tenant, "X-Musubi-Cwd": "/"})
    resp = c.getresponse()
    ready.set()
    while not stop.is_set():
        raw = resp.readline()
        if not raw:
            return
        if raw.startswith(b"data: "):
            got = time.time()
            ev = json.loads(raw[6:])
            ts = ev.get("ts")
            if ts:
                sent = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
                lags.append((got - sent) * 1000)


def _overhead(paths: Any, home: Path, fake: Any, n: int, delay_s: float) -> None:
    """Part 1 with a fake answering after ``delay_s``: prints its table (leaves the engine stopped)."""
    import duckdb

    from core.client import stop_engine
    from tests.fakes.llm_servers import Reply

    WORKFLOWS["loop"]["steps"][0]["options"]["n"] = n  # type: ignore[index]
    (home / "test-workflows.json").write_text(json.dumps(WORKFLOWS))
    _roomy(paths, "default")
    fake.reset()
    fake.default = Reply(text="a direct answer", input_tokens=50, output_tokens=10, delay_s=delay_s)
    direct = asyncio.run(_direct(fake.base_url, n))
    fake.push(*(Reply(text=f"answer number {i}", input_tokens=50, output_tokens=10, delay_s=delay_s)
                for i in range(n)))
    commits0 = _raw(paths, "GET", "/v1/health")["commits"]
    run = _raw(paths, "POST", "/v1/runs", {"workflow": "loop", "feature": "bench", "model": MODEL,
                                            "max_step_turns": n + 10, "max_turns": n + 10})
    t0 = time.perf_counter()
    done = _wait(paths, "default", run["id"])
    wall = time.perf_counter() - t0
    COMMITS_PER_CALL["sequential"] = (_raw(paths, "GET", "/v1/health")["commits"] - commits0) / n
    assert done["state"] == "done", done
    stop_engine(paths)
    floor = _fsync_floor(home, n)
    commit = asyncio.run(_commit_floor(home, n))
    con = duckdb.connect(str(paths.db), read_only=True)
    ends = [r[0] for r in con.execute("SELECT ended_at FROM run_calls WHERE run_id = ? AND outcome = 'ok' "
                                      "ORDER BY ended_at", [run["id"]]).fetchall()]
    con.close()
    per = [(b - e).total_seconds() * 1000 for e, b in zip(ends, ends[1:], strict=False)]
    rows = [("direct aiohttp call", n, pct(direct, 50), pct(direct, 95), "1.00x"),
            ("through the engine", len(per), pct(per, 50), pct(per, 95), f"{pct(per, 95) / pct(direct, 95):.2f}x"),
            ("floor: bare fdatasync, same disk", n, pct(floor, 50), pct(floor, 95),
             f"{pct(floor, 95) / pct(direct, 95):.2f}x"),
            ("floor: the same through the sync helper", n, pct(commit, 50), pct(commit, 95),
             f"{pct(commit, 95) / pct(direct, 95):.2f}x")]
    print(table(f"model call: engine vs direct to the same fake answering after {delay_s * 1000:g} ms "
                f"(run wall {wall:.1f} s)", ("path", "calls", "p50 ms", "p95 ms", "p95 ratio"), rows))
    print(f"engine overhead per call: p50 {pct(per, 50) - pct(direct, 50):.2f} ms, "
          f"p95 {pct(per, 95) - pct(direct, 95):.2f} ms (target p95 <= 5 ms); fsync p95 {pct(floor, 95):.2f} ms; "
          f"group commits (journal fsyncs) per call {COMMITS_PER_CALL['sequential']:.2f}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--provider-ms", default="0,20",
                    help="part 1's fake latencies, comma-separated: 0 = the fsync is the floor; a provider slower "
                         "than the fsync hides it (the request leaves while its sent row is synced)")
    ap.add_argument("--only-overhead", action="store_true", help="part 1 only (e.g. under MUSUBI_ENGINE_PROFILE)")
    a = ap.parse_args()
    from core.client import start_engine, stop_engine
    from core.paths import HomePaths
    from tests.fakes.llm_servers import FakeLLMServer, Reply

    fake = FakeLLMServer("openai", api_key=KEY).start()
    with temp_home("mr") as home, temp_home("ms") as scratch:
        shim = _shim(scratch / "shim")
        (scratch / "config").mkdir()
        os.environ.update({"MUSUBI_TEST_RUNS": "1", "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.base_url,
                           "MUSUBI_CONFIG_DIR": str(scratch / "config")})
        if shim:
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), shim) if p)
        (home / "test-workflows.json").write_text(json.dumps(WORKFLOWS))
        paths = HomePaths(home)
        start_engine(paths, timeout=60)
        try:
            # -- 1. overhead per call -----------------------------------------------------------
            for i, ms in enumerate(float(x) for x in a.provider_ms.split(",")):
                if i:
                    start_engine(paths, timeout=60)
                _overhead(paths, home, fake, a.calls, ms / 1000.0)

            if a.only_overhead:
                return
            # -- 2. concurrency ------------------------------------------------------------------
            start_engine(paths, timeout=60)
            fake.reset()
            fake.default = Reply(text="concurrent answer", input_tokens=40, output_tokens=8, delay_s=a.latency)
            tenants = [f"bt{i}" for i in range(a.tenants)]
            for t in tenants:
                _raw(paths, "POST", "/v1/tenants", {"name": t})
                _roomy(paths, t)
            lags: list[float] = []
            stop = threading.Event()
            threads = []
            for t in tenants:
                ready = threading.Event()
                th = threading.Thread(target=_stream, args=(paths, t, lags, stop, ready), daemon=True)
                th.start()
                ready.wait(10)
                threads.append(th)
            t0 = time.perf_counter()
            from concurrent.futures import ThreadPoolExecutor

            def one(i: int) -> tuple[str, Any]:  # clients start their runs at once, as on a busy team
                t = tenants[i % len(tenants)]
                return t, _raw(paths, "POST", "/v1/runs", {"workflow": "three", "feature": f"run {i}",
                                                           "model": MODEL}, tenant=t)

            commits0 = _raw(paths, "GET", "/v1/health")["commits"]
            with ThreadPoolExecutor(16) as pool:
                started = list(pool.map(one, range(a.runs)))
            finals = [_wait(paths, t, r["id"]) for t, r in started]
            wall = time.perf_counter() - t0
            commits = _raw(paths, "GET", "/v1/health")["commits"] - commits0  # polls write nothing
            time.sleep(0.5)
            stop.set()
            states = {f["state"] for f in finals}
            charged = sum(f["tokens"] for f in finals)
            stop_engine(paths)
            import duckdb

            con = duckdb.connect(str(paths.db), read_only=True)
            ok_calls = con.execute("SELECT count(*) FROM run_calls WHERE outcome = 'ok' AND tenant_id LIKE 'bt%'"
                                   ).fetchone()[0]
            ledger = con.execute("SELECT count(*), sum(tokens) FROM usage_ledger WHERE run_id IS NOT NULL "
                                 "AND tenant_id LIKE 'bt%'").fetchone()
            spans = con.execute("SELECT sent_at, ended_at, latency_ms FROM run_calls WHERE tenant_id LIKE 'bt%' "
                                "ORDER BY sent_at").fetchall()
            con.close()
            marks = sorted([(s0, 1) for s0, _e, _l in spans] + [(e0, -1) for _s, e0, _l in spans])
            inflight = peak = 0
            for _t, d in marks:
                inflight += d
                peak = max(peak, inflight)
            lat = [x for _s, _e, x in spans if x is not None]
            print(f"calls in flight at once: peak {peak}; provider latency p50 {pct(lat, 50):.0f} ms, "
                  f"p95 {pct(lat, 95):.0f} ms; first sent {spans[0][0]}, last ended {spans[-1][1]}")
            reported = sum(i + o for i, o in fake.usage_reported)
            once = fake.completed == ok_calls == ledger[0] and reported == ledger[1] == charged
            rows2 = [("runs", a.runs, "", ""), ("calls completed by the fake", fake.completed, "", ""),
                     ("ok call records", ok_calls, "", ""), ("ledger rows with a run id", ledger[0], "", ""),
                     ("tokens reported / ledger / runs", f"{reported} / {ledger[1]} / {charged}", "", ""),
                     ("run.* events received", len(lags), f"p50 {pct(lags, 50):.1f}", f"p95 {pct(lags, 95):.1f}")]
            print(table(f"{a.runs} runs on {a.tenants} tenants, fake latency {a.latency * 1000:.0f} ms "
                        f"(wall {wall:.1f} s, states {sorted(states)})", ("what", "count", "lag ms", ""), rows2))
            print(f"every call charged exactly once: {once}; event lag p95 {pct(lags, 95):.1f} ms (target < 100 ms); "
                  f"ideal wall (3 sequential calls) {3 * a.latency:.1f} s vs {wall:.1f} s")
            # Group commit across concurrent calls: every batch queued while a journal fsync is in flight
            # goes into the next single write + fsync (core/engine/commit.py), so concurrent calls share fsyncs.
            per_call = commits / max(1, ok_calls)
            seq = COMMITS_PER_CALL.get("sequential")
            ratio = f", {per_call / seq:.2f}x the sequential run's {seq:.2f}" if seq else ""
            print(f"group commits (journal fsyncs) per model call with {a.runs} runs at once: {per_call:.2f}{ratio} "
                  f"({commits} commits for {ok_calls} calls, starts and step ends included)")
        finally:
            with contextlib.suppress(Exception):
                stop_engine(paths)
            fake.stop()


if __name__ == "__main__":
    main()
