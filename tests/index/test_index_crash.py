"""kill -9 of the engine and of the search worker during indexing, and a corrupt vector index."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.helpers import Home, poll

from .helpers import add_project, index, job, make_repo, search, start_index, wait_job

N = 60  # files (one chunk each), in batches of 5, each batch's save held back 0.3 s
SOAK_SMALL = 30  # the worker kill in make test: still several batches before and after the kill


def files(n: int) -> dict[str, str]:
    return {f"m{i}.py": f"def function_{i}(x):\n    return x + {i}\n" for i in range(n)}


FILES = files(N)


@pytest.fixture
def slow(fhome: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Home]:
    """``slow(n)``: an engine whose project ``big`` has ``n`` files, indexed slowly enough to be killed mid-run."""

    def make(n: int) -> Home:
        monkeypatch.setenv("MUSUBI_TEST_INDEX_BATCH", "5")
        monkeypatch.setenv("MUSUBI_TEST_INDEX_DELAY_S", "0.3")
        fhome.start()
        add_project(fhome, "default", "big", make_repo(tmp_path, files(n)))
        return fhome

    return make


def _dense(h: Home, job_id: str) -> int:
    """Chunks embedded and committed, as the job's last checkpoint says."""
    return int((job(h, "default", job_id)["checkpoint"] or {}).get("dense", 0))


def worker_pids(h: Home) -> list[int]:
    """The search worker processes of this home's engine (its children running core.rag.worker)."""
    engine = h.pid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == engine and b"core.rag.worker" in cmd:
            out.append(int(d))
    return out


@pytest.mark.soak
def test_kill9_of_the_engine_mid_index_resumes_without_redoing_committed_batches(
    slow: Callable[[int], Home], monkeypatch: pytest.MonkeyPatch, soak: bool
) -> None:
    h = slow(N)  # not fewer: the kill must land while most batches are still to come
    j = start_index(h, "default", "big")
    poll(lambda: _dense(h, j["id"]) >= 10, timeout=60)
    seen = _dense(h, j["id"])  # committed before the kill
    h.kill9()
    if not soak:  # the resumed run needs no pause to be checked: it runs at full speed
        monkeypatch.delenv("MUSUBI_TEST_INDEX_DELAY_S")
    h.start()
    end = wait_job(h, "default", j["id"], timeout=120)
    assert end["attempts"] == 2
    r = end["result"]
    # The resumed run found what was committed (in the database, at least what we saw) and embedded
    # exactly the rest: no committed batch again, no file chunked again.
    assert seen <= r["dense_before"] < N and r["dense_before"] % 5 == 0
    assert r["embedded"] == N - r["dense_before"] and r["changed"] == 0
    _, st = h.raw("GET", "/v1/index/status", tenant="default", project="big")
    assert st["chunks"] == st["dense_chunks"] == N and st["state"] == "ready", st
    _, body = search(h, "default", "big", "function_7")
    assert body["results"][0]["symbol"] == "function_7" and body["complete"] is True
    acts = [e["action"] for e in h.audit("default") if e["resource"] == f"job:{j['id']}"]
    assert acts == ["job.start", "job.interrupt", "job.resume", "job.finish"]


@pytest.mark.soak
def test_kill9_of_the_worker_mid_batch_restarts_it_and_the_job_continues(slow: Callable[[int], Home],
                                                                        soak: bool) -> None:
    n = N if soak else SOAK_SMALL
    h = slow(n)
    j = start_index(h, "default", "big")
    poll(lambda: _dense(h, j["id"]) >= 10 and worker_pids(h), timeout=60)
    for pid in worker_pids(h):
        os.kill(pid, signal.SIGKILL)
    end = wait_job(h, "default", j["id"], timeout=120)
    assert end["attempts"] == 1 and end["result"]["embedded"] == n
    _, st = h.raw("GET", "/v1/index/status", tenant="default", project="big")
    assert st["dense_chunks"] == n, st
    # Every chunk is findable by its own vector: nothing the dead worker held unsaved was counted.
    for i in (0, n // 2, n - 1):
        _, body = search(h, "default", "big", f"function_{i} return x")
        assert body["results"][0]["symbol"] == f"function_{i}", body


def test_a_corrupt_vector_index_is_never_served_and_is_rebuilt(fhome: Home, tmp_path: Path) -> None:
    h = fhome
    h.start()
    add_project(h, "default", "demo", make_repo(tmp_path, dict(list(FILES.items())[:8])))
    first = index(h, "default", "demo")
    assert first["embedded"] == 8
    h.stop()
    vec = h.dir / "tenants" / "default" / "code" / "demo" / "vectors"
    victims = [p for p in vec.iterdir() if p.is_file() and p.stat().st_size > 64]
    assert victims, list(vec.iterdir())
    for p in victims:  # a torn write: the tail is gone
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    h.start()
    status, body = search(h, "default", "demo", "function_3")
    assert status == 200 and body["dense_coverage"] == 0.0 and body["complete"] is False, body
    assert body["results"][0]["symbol"] == "function_3"  # lexical still answers
    _, st = h.raw("GET", "/v1/index/status", tenant="default", project="demo")
    assert st["state"] == "stale", st
    again = index(h, "default", "demo")
    assert again["rebuilt"] is True and again["embedded"] == 8 and again["changed"] == 0
    _, body = search(h, "default", "demo", "function_3")
    assert body["dense_coverage"] == 1.0 and body["complete"] is True
