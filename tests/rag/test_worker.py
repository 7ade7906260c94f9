"""The embedding worker process and its asyncio client, with the fake embedder (core/rag/worker*.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from core.config import SearchSettings
from core.rag import frames
from core.rag.embedder import FakeEmbedder, default_threads
from core.rag.errors import IndexCorrupt, ModelUnavailable, WorkerFailed, WorkerRequestError
from core.rag.vectors import MANIFEST, VectorIndex
from core.rag.worker_client import WorkerClient

ROOT = Path(__file__).resolve().parents[2]
DIM = 16
EMB = FakeEmbedder(DIM)


def _client(tmp_path: Path, **settings: object) -> WorkerClient:
    return WorkerClient(SearchSettings(**settings), log_path=tmp_path / "logs" / "worker.log",  # type: ignore[arg-type]
                        fake_dim=DIM)


async def _wait(cond: object, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_starts_on_demand_answers_and_stops_when_idle(tmp_path: Path) -> None:
    c = _client(tmp_path, idle_s=0.5)
    assert not c.running and c.pid is None  # nothing starts before the first request
    got = await c.embed(["hello world", "x"])
    assert (got.n, got.dim) == (2, DIM)
    assert np.array_equal(np.frombuffer(got.data, dtype=np.float32).reshape(2, DIM), EMB.encode(["hello world", "x"]))
    assert c.running and c.info["model_id"] == EMB.model_id
    pid = c.pid
    await _wait(lambda: not c.running)  # idle_s after the last answer, it goes
    assert c.restarts == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # type: ignore[arg-type]
    assert (await c.embed(["again"])).n == 1  # and comes back on demand
    await c.close()
    assert "ready" in (tmp_path / "logs" / "worker.log").read_text()  # stderr went to the log


async def test_vectors_through_the_worker_and_saved_on_clean_stop(tmp_path: Path) -> None:
    c = _client(tmp_path)
    folder = tmp_path / "t" / "p"
    assert (await c.search(folder, texts=["json"], k=3)) == [[]]  # not indexed yet: no hits, no error
    r = await c.add(folder, [1, 2, 3], texts=["parse json text", "open a socket", "read a file"])
    assert r == {"added": 3, "count": 3}
    vec = EMB.encode(["sort numbers"]).tobytes()
    assert (await c.add(folder, [4], vecs=vec))["count"] == 4
    hits = await c.search(folder, texts=["parse json data"], k=2)
    assert [h.id for h in hits[0]][0] == 1 and len(hits[0]) == 2
    assert [h.id for h in (await c.search(folder, vecs=vec, k=1))[0]] == [4]
    assert (await c.remove(folder, [2, 99]))["removed"] == 1
    found, got = await c.get(folder, [4, 2])
    assert found == [4] and got.data == vec
    assert await c.ids(folder) == [1, 3, 4]  # every id held, ascending (an activation drops deleted chunks')
    stat = await c.stat(folder)
    assert stat["count"] == 3 and stat["dirty"] is True
    await c.close()  # a clean stop saves what was not saved
    assert VectorIndex.open(folder, model_id=EMB.model_id, dim=DIM).ids().tolist() == [1, 3, 4]
    with pytest.raises(WorkerFailed, match="stopped"):
        await c.embed(["after close"])


async def test_kill_9_mid_request_restarts_and_answers(tmp_path: Path) -> None:
    c = _client(tmp_path)
    first = (await c.hello())["pid"]
    texts = [f"text number {i} with some words" for i in range(60_000)]  # ~1 s of fake embedding
    task = asyncio.create_task(c.embed(texts))
    await asyncio.sleep(0.3)  # the request is written and being worked on
    os.kill(first, signal.SIGKILL)
    got = await task
    assert got.n == 60_000 and c.restarts == 1 and c.pid != first
    await c.close()


async def test_a_worker_killed_while_idle_is_replaced(tmp_path: Path) -> None:
    c = _client(tmp_path)
    first = (await c.hello())["pid"]
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.3)  # its output closes; no request is outstanding
    assert (await c.embed(["x"])).n == 1
    assert c.pid != first and c.restarts == 1
    await c.close()


async def test_a_worker_that_keeps_dying_is_a_clear_error(tmp_path: Path) -> None:
    c = _client(tmp_path)
    c.python = str(tmp_path / "dies.sh")
    Path(c.python).write_text("#!/bin/sh\necho 'boom' >&2\nexit 3\n")
    Path(c.python).chmod(0o755)
    with pytest.raises(WorkerFailed, match="died twice") as got:
        await c.embed(["x"])
    assert str(tmp_path / "logs" / "worker.log") in got.value.message
    await c.close()


async def test_garbage_from_the_worker_is_treated_as_death(tmp_path: Path) -> None:
    c = _client(tmp_path)
    c.python = str(tmp_path / "garbage.py")
    garbage = "sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x03abc')"  # a frame whose body is not a map
    Path(c.python).write_text(f"#!{sys.executable}\nimport sys, time\n{garbage}\nsys.stdout.flush()\ntime.sleep(30)\n")
    Path(c.python).chmod(0o755)
    with pytest.raises(WorkerFailed, match="bad frame"):
        await c.hello()
    assert c.restarts == 2 and not c.running  # both tries met a broken worker
    await c.close()


async def test_a_model_that_cannot_load_is_not_retried(tmp_path: Path) -> None:
    c = WorkerClient(SearchSettings(model=str(tmp_path / "nowhere")), log_path=tmp_path / "w.log")
    with pytest.raises(ModelUnavailable, match="not a sentence-transformers model folder"):
        await c.hello()
    assert c.restarts == 0 and not c.running
    await c.close()


async def test_corrupt_index_refused_then_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    idx = VectorIndex.create(folder, model_id=EMB.model_id, dim=DIM)
    idx.add([1], EMB.encode(["one"]))
    manifest = idx.save()
    (folder / manifest["file"]).write_bytes(b"torn")
    c = _client(tmp_path)
    with pytest.raises(IndexCorrupt) as got:
        await c.search(folder, texts=["one"], k=1)
    assert got.value.extra["reason"] == "checksum"
    assert (await c.reset(folder))["count"] == 0
    await c.add(folder, [2], texts=["two"])
    assert (await c.save(folder))["count"] == 1
    assert (await c.search(folder, texts=["two"], k=1))[0][0].id == 2
    assert json.loads((folder / MANIFEST).read_text())["count"] == 1
    await c.close()


async def test_bad_requests_are_refused_and_the_worker_stays(tmp_path: Path) -> None:
    c = _client(tmp_path)
    with pytest.raises(WorkerRequestError, match="absolute"):
        await c.request("vec_add", dir="relative/path", ids=b"", vecs=b"")
    with pytest.raises(WorkerRequestError, match="unknown worker operation"):
        await c.request("no_such_op")
    with pytest.raises(WorkerRequestError, match="int64 bytes"):
        await c.request("vec_remove", dir=str(tmp_path / "i"), ids=b"123")
    with pytest.raises(WorkerRequestError, match="k"):
        await c.search(tmp_path / "i", texts=["x"], k=0)
    with pytest.raises(WorkerRequestError, match="ids for"):
        await c.add(tmp_path / "i", [1, 2], texts=["only one"])
    with pytest.raises(WorkerRequestError, match="float32 bytes"):
        await c.add(tmp_path / "i", [1], vecs=b"\x00" * (4 * DIM + 4))
    with pytest.raises(WorkerRequestError, match="exactly one"):
        await c.add(tmp_path / "i", [1])
    with pytest.raises(WorkerRequestError, match="list of strings"):
        await c.request("embed", texts=["ok", 3])
    assert (await c.stat(tmp_path / "i"))["count"] == 0  # nothing refused was added
    with pytest.raises(WorkerRequestError, match="too large"):
        await c.embed(["x" * (frames.MAX_FRAME + 1)])
    pid = c.pid
    assert (await c.embed(["still here"])).n == 1 and c.pid == pid and c.restarts == 0
    await c.close()


async def test_in_flight_requests_are_bounded(tmp_path: Path) -> None:
    c = _client(tmp_path, max_inflight=2)
    seen: list[int] = []
    send = c._send

    async def spy(message: dict, proc: object) -> dict:  # type: ignore[type-arg]
        seen.append(len(c._pending) + 1)
        return await send(message, proc)  # type: ignore[arg-type]

    c._send = spy  # type: ignore[method-assign]
    got = await asyncio.gather(*(c.embed([f"text {i}"] * 200) for i in range(12)))
    assert [g.n for g in got] == [200] * 12
    assert max(seen) <= 2
    await c.close()


def test_bad_frames_straight_to_the_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "w.log", "wb") as errlog:
        proc = subprocess.Popen([sys.executable, "-m", "core.rag.worker", "--fake", str(DIM)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errlog, env=env)
    assert proc.stdin and proc.stdout

    def answer() -> dict:  # type: ignore[type-arg]
        n = struct.unpack(">I", proc.stdout.read(4))[0]  # type: ignore[union-attr]
        return msgspec.msgpack.decode(proc.stdout.read(n))  # type: ignore[union-attr,no-any-return]

    proc.stdin.write(struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1")  # not msgpack: answered, framing intact
    proc.stdin.flush()
    assert answer()["error"]["code"] == "bad_frame"
    body = msgspec.msgpack.encode([1])
    proc.stdin.write(struct.pack(">I", len(body)) + body)  # msgpack, but not a map
    proc.stdin.flush()
    assert answer()["error"]["code"] == "bad_frame"
    proc.stdin.write(frames.encode({"id": 7, "op": "hello"}))
    proc.stdin.flush()
    assert answer() == {"id": 7, "ok": True, "result": {"pid": proc.pid, "model_id": EMB.model_id, "dim": DIM,
                                                           "device": "cpu", "threads": default_threads(), "batch": 0}}
    proc.stdin.write(struct.pack(">I", frames.MAX_FRAME + 1))  # cannot be skipped: answered, then it exits
    proc.stdin.flush()
    assert answer()["error"]["code"] == "bad_frame"
    assert proc.wait(timeout=20) == 2


def test_the_client_module_is_light() -> None:
    code = ("import sys, core.rag.worker_client, core.rag.model, core.rag.frames; "
            "print(sorted(m for m in ('numpy', 'torch', 'faiss', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


async def test_the_nice_setting_lowers_the_workers_priority(tmp_path: Path) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    mine = _niceness(os.getpid())
    for nice in (0, 7):
        c = _client(tmp_path, nice=nice)
        try:
            await c.hello()
            assert c.pid is not None and _niceness(c.pid) == min(19, mine + nice)
        finally:
            await c.close()
    with pytest.raises(ValueError, match="nice must be 0 to 19"):
        SearchSettings(nice=20)


# -- local embedder (issue 19): a folder bound to another model --------------------------------------------


async def test_a_folder_bound_to_another_model_is_embedded_and_recorded_with_it(tmp_path: Path) -> None:
    c = _client(tmp_path)
    tuned = str(tmp_path / "tuned" / "model")  # the fake worker names its model after the folder
    other = FakeEmbedder(DIM, name="fake-model")
    base_dir, tuned_dir = tmp_path / "vectors", tmp_path / "vectors-t1"
    c.bind(tuned_dir, tuned)
    assert (await c.hello(tuned))["model_id"] == other.model_id
    assert (await c.hello())["model_id"] == EMB.model_id  # the worker's own model is untouched
    await c.add(base_dir, [1], texts=["parse the config"])
    await c.add(tuned_dir, [1], texts=["parse the config"])
    await c.save(base_dir)
    await c.save(tuned_dir)
    hits = await c.search(tuned_dir, texts=["parse the config"], k=1)
    assert hits[0][0].id == 1 and hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    await c.close()
    assert json.loads((tuned_dir / MANIFEST).read_text())["model_id"] == other.model_id
    assert json.loads((base_dir / MANIFEST).read_text())["model_id"] == EMB.model_id
    # A worker that opens the tuned folder with its own model refuses it (vectors of two models never mix).
    with pytest.raises(IndexCorrupt):
        VectorIndex.open(tuned_dir, model_id=EMB.model_id, dim=DIM)
    c2 = _client(tmp_path)
    c2.bind(tuned_dir, tuned)  # bound again (a new engine): the index opens with the model it was made with
    assert (await c2.open_index(tuned_dir))["count"] == 1
    with pytest.raises(WorkerRequestError):
        await c2.request("embed", texts=["x"], model="relative/folder")
    await c2.close()
