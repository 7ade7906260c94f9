"""The real all-MiniLM-L6-v2, through the worker, with every network route closed (one worker per module)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from core.config import SearchSettings
from core.rag.worker_client import WorkerClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Any attempt to reach the network fails fast: proxies and the hub endpoint point at a closed port.
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
              "HF_ENDPOINT": "http://127.0.0.1:9", "NO_PROXY": ""}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def real(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkerClient]:
    mp = pytest.MonkeyPatch()
    for k, v in NO_NETWORK.items():
        mp.setenv(k, v)
    tmp = tmp_path_factory.mktemp("rag")
    c = WorkerClient(SearchSettings(idle_s=600), log_path=tmp / "worker.log")
    if _can_unshare():  # better still: a network namespace with no interface up at all
        c.python = str(tmp / "python-no-net")
        Path(c.python).write_text(f'#!/bin/sh\nexec unshare -rn {sys.executable} "$@"\n')
        Path(c.python).chmod(0o755)
    try:
        yield c
    finally:
        await c.close()
        mp.undo()


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def _rows(r: object) -> np.ndarray:
    return np.frombuffer(r.data, dtype=np.float32).reshape(r.n, r.dim)  # type: ignore[attr-defined]


async def test_real_model_embeds_offline_normalised_and_meaningful(real: WorkerClient) -> None:
    info = await real.hello()
    assert info["model_id"].startswith("all-MiniLM-L6-v2@") and info["dim"] == 384
    if _can_unshare():
        assert os.readlink(f"/proc/{info['pid']}/ns/net") != os.readlink("/proc/self/ns/net")
    texts = ["How do I read a JSON file in Python?", "Load and parse a json document from disk.",
             "The cat sat quietly on the warm windowsill."]
    got = await real.embed(texts)
    assert (got.n, got.dim) == (3, 384)
    v = _rows(got)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]  # a paraphrase is much nearer than an unrelated sentence
    assert (await real.embed([])).n == 0
    again = _rows(await real.embed(texts[:1]))
    assert np.allclose(again[0], v[0], atol=1e-5)  # batch composition does not change a vector
    counts = await real.tokens(["hello world", "x " * 400])
    assert counts[0] == 4 and counts[1] > 256  # [CLS] hello world [SEP]; the long one is over the window


async def test_real_model_search_finds_the_code(real: WorkerClient, tmp_path: Path) -> None:
    chunks = {1: "def read_json(path):\n    with open(path) as f:\n        return json.load(f)",
              2: "def connect(host, port):\n    return socket.create_connection((host, port))",
              3: "class Stack:\n    def push(self, item):\n        self.items.append(item)"}
    folder = tmp_path / "tenant" / "project"
    await real.add(folder, list(chunks), texts=list(chunks.values()))
    hits = await real.search(folder, texts=["open a tcp connection to a server", "load json from a file"], k=3)
    assert [h[0].id for h in hits] == [2, 1]
    manifest = await real.save(folder)
    assert manifest["model_id"] == real.info["model_id"] and manifest["count"] == 3
