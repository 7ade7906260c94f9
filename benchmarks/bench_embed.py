"""Embedding and dense-search speed: raw ``model.encode`` vs the worker, query latency, memory, index size.

Every ratio is against a baseline measured in this run (the machine is shared and noisy):

- throughput of texts embedded and added to a FAISS index THROUGH the worker (the index job's path:
  texts cross the pipe, vectors never do) vs raw in-process ``model.encode`` on the same texts,
  both with the worker's thread count (target for the index job: >= 90 %);
- query latency, embedding included, through the warm worker against a 100k-vector index (IVF, as
  a save makes it from 50k vectors),
  p50/p95 for 1 and 2 torch threads, idle and with one other core kept busy; the cold first query
  (process start + model load + query);
- the worker's resident memory (model loaded; with the 100k index);
- bytes on disk per 10k vectors; flat search p95 at 10k..200k vectors and the IVF index a save
  switches to (1 thread), with the time the switch takes.

Usage: ``python benchmarks/bench_embed.py [--texts 512] [--step 256] [--rounds 2] [--queries 40] [--big 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._util import pct, table  # noqa: E402
from core.config import SearchSettings  # noqa: E402
from core.rag.worker_client import WorkerClient  # noqa: E402

QUERIES = ["read a json file", "open a tcp connection", "parse command line arguments", "format a date",
           "compute a sha256 hash of a file", "retry a request after a failure", "sort a list of records",
           "walk a directory tree", "escape html characters", "split a string on whitespace"]


def code_texts(n: int) -> list[str]:
    """``n`` chunks of real code (12-line windows of standard library modules)."""
    import argparse as a
    import json
    import logging
    import os
    import shutil

    lines: list[str] = []
    for mod in (a, json, logging, os, shutil, subprocess, inspect):
        lines += inspect.getsource(mod).splitlines()
    out = ["\n".join(lines[i:i + 12]) for i in range(0, len(lines) - 12, 12)]
    return (out * (n // max(len(out), 1) + 1))[:n]


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """One process spinning on a core: the engine or another user at work."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        p.kill()
        p.wait()


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def raw_embedder(threads: int, batch: int) -> object:
    from core.rag.embedder import SentenceEmbedder
    from core.rag.model import resolve_model

    return SentenceEmbedder(resolve_model(), threads=threads, batch=batch)


async def worker_part(args: argparse.Namespace, tmp: Path, texts: list[str]) -> dict[str, object]:
    import numpy as np

    out: dict[str, object] = {}
    big = tmp / "big"
    for threads in (1, 2):
        c = WorkerClient(SearchSettings(threads=threads, idle_s=600), log_path=tmp / "worker.log")
        t = time.perf_counter()
        await c.search(tmp / "empty", texts=[QUERIES[0]], k=10)
        cold = time.perf_counter() - t
        pid = c.pid or 0
        rss_loaded = rss_mb(pid)
        if threads == 1:
            out["cold"] = cold
            out["rss_loaded"] = rss_loaded
            # Throughput through the worker (texts in; embedded and added there, batches pipelined as the
            # index job sends them) vs raw encode in this process; rounds alternate so load changes hit both.
            raw = raw_embedder(threads=1, batch=16)
            raw.encode(texts[:16])  # type: ignore[attr-defined]
            await c.add(tmp / "warm", list(range(16)), texts=texts[:16])
            step, raw_s, worker_s = args.step, [], []
            for _ in range(args.rounds):
                t = time.perf_counter()
                raw.encode(texts)  # type: ignore[attr-defined]
                raw_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                await asyncio.gather(*(c.add(tmp / "thr", list(range(i, i + len(texts[i:i + step]))),
                                             texts=texts[i:i + step]) for i in range(0, len(texts), step)))
                worker_s.append(time.perf_counter() - t)
            out["raw_tps"] = len(texts) / min(raw_s)
            out["worker_tps"] = len(texts) / min(worker_s)
            del raw
            # a big index of random unit vectors (flat search cost does not depend on the values)
            rng = np.random.default_rng(0)
            for lo in range(0, args.big, 20_000):
                v = rng.standard_normal((min(20_000, args.big - lo), c.info["dim"]), dtype=np.float32)
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                await c.add(big, list(range(lo, lo + len(v))), vecs=v.tobytes())
            out["big_kind"] = (await c.save(big))["kind"]  # from 50k vectors the save switches to IVF
            out["rss_big"] = rss_mb(pid)
            ten = tmp / "ten"
            v = rng.standard_normal((10_000, c.info["dim"]), dtype=np.float32)
            await c.add(ten, list(range(10_000)), vecs=v.tobytes())
            manifest = await c.save(ten)
            out["bytes_10k"] = manifest["bytes"]
        else:
            await c.open_index(big)
        for label, ctx in (("idle", contextlib.nullcontext()), ("1 core busy", busy_core())):
            with ctx:
                await c.search(big, texts=["warm up"], k=10)
                lat = []
                for i in range(args.queries):
                    t = time.perf_counter()
                    await c.search(big, texts=[f"{QUERIES[i % len(QUERIES)]} {i}"], k=10)
                    lat.append((time.perf_counter() - t) * 1000)
                out[f"q{threads} {label}"] = (pct(lat, 50), pct(lat, 95))
        await c.close()
    return out


def search_p95(sizes: list[int], dim: int = 384, queries: int = 60) -> list[tuple[int, str, float, float, float]]:
    """(vectors, kind, p50 ms, p95 ms, switch s): flat at each size, and the IVF a save switches to."""
    import faiss
    import numpy as np

    from core.rag.vectors import VectorIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    rows: list[tuple[int, str, float, float, float]] = []
    idx = VectorIndex.create(Path("/nonexistent"), model_id="bench", dim=dim)
    q = rng.standard_normal((queries, dim), dtype=np.float32)

    def timed(index: VectorIndex) -> tuple[float, float]:
        lat = []
        for i in range(queries):
            t = time.perf_counter()
            index.search(q[i:i + 1], 10)
            lat.append((time.perf_counter() - t) * 1000)
        return pct(lat, 50), pct(lat, 95)

    for n in sizes:
        v = rng.standard_normal((n - idx.count, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        idx.add(np.arange(idx.count, n, dtype=np.int64), v)
        rows.append((n, "flat", *timed(idx), 0.0))
        if n >= 100_000:
            ivf = VectorIndex.create(Path("/nonexistent"), model_id="bench", dim=dim)
            ivf._index = faiss.clone_index(idx._index)
            t = time.perf_counter()
            ivf._to_ivf()
            rows.append((n, "ivf", *timed(ivf), time.perf_counter() - t))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=512, help="code chunks for the throughput comparison")
    p.add_argument("--queries", type=int, default=40, help="queries per latency row")
    p.add_argument("--rounds", type=int, default=2, help="alternating raw/worker throughput rounds")
    p.add_argument("--step", type=int, default=256, help="texts per worker request (two in flight)")
    p.add_argument("--big", type=int, default=100_000, help="vectors in the index the queries search")
    args = p.parse_args()
    texts = code_texts(args.texts)
    with tempfile.TemporaryDirectory(prefix="be", dir="/tmp") as d:
        tmp = Path(d)
        got = asyncio.run(worker_part(args, tmp, texts))
    raw = got["raw_tps"]
    print(table("embedding throughput (same code chunks, 1 torch thread, batch 16)", ["path", "texts/s", "ratio"], [
        ("raw model.encode in-process (baseline)", raw, 1.0),
        ("worker: texts in, embedded + FAISS add", got["worker_tps"], got["worker_tps"] / raw),  # type: ignore[operator]
    ]))
    print(table("", ["rounds (best of each)", "texts per round", "texts per worker request"], [
        (args.rounds, len(texts), args.step),
    ]))
    rows = []
    for threads in (1, 2):
        for label in ("idle", "1 core busy"):
            p50, p95 = got[f"q{threads} {label}"]  # type: ignore[misc]
            rows.append((f"{threads} thread(s), {label}", p50, p95))
    base95 = rows[0][2]
    print(table(f"query latency through the warm worker, embedding + search over {args.big:,} vectors, "
                f"{got['big_kind']} index (ms)",
                ["torch threads, machine", "p50", "p95", "p95 vs 1 thread idle"],
                [(*r, r[2] / base95) for r in rows]))
    print(table("worker", ["measure", "value"], [
        ("cold first query: start + model load + query (s)", got["cold"]),
        ("resident memory, model loaded (MB)", got["rss_loaded"]),
        (f"resident memory, {args.big:,}-vector index open (MB)", got["rss_big"]),
        ("index file bytes per 10k vectors (MB)", got["bytes_10k"] / 2**20),  # type: ignore[operator]
    ]))
    rows = search_p95([10_000, 50_000, 100_000, 200_000])
    base = rows[0][3]
    print(table("vector search alone, 1 thread, k=10, one query (ms); ivf: what a save switches to from 50k vectors",
                ["vectors", "index", "p50", "p95", "p95 vs flat 10k", "switch (train + add) s"],
                [(n, kind, p50, p95, p95 / base, sw) for n, kind, p50, p95, sw in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
