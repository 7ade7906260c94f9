"""The real all-MiniLM-L6-v2, through the worker, with every network route closed (the session's shared
worker, tests/rag/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.rag.worker_client import WorkerClient

from .helpers import can_unshare

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared worker (conftest.py) lives on that loop


def _rows(r: object) -> np.ndarray:
    return np.frombuffer(r.data, dtype=np.float32).reshape(r.n, r.dim)  # type: ignore[attr-defined]


async def test_real_model_embeds_offline_normalised_and_meaningful(real_worker: WorkerClient) -> None:
    info = await real_worker.hello()
    assert info["model_id"].startswith("all-MiniLM-L6-v2@") and info["dim"] == 384
    if can_unshare():
        assert os.readlink(f"/proc/{info['pid']}/ns/net") != os.readlink("/proc/self/ns/net")
    texts = ["How do I read a JSON file in Python?", "Load and parse a json document from disk.",
             "The cat sat quietly on the warm windowsill."]
    got = await real_worker.embed(texts)
    assert (got.n, got.dim) == (3, 384)
    v = _rows(got)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]  # a paraphrase is much nearer than an unrelated sentence
    assert (await real_worker.embed([])).n == 0
    again = _rows(await real_worker.embed(texts[:1]))
    assert np.allclose(again[0], v[0], atol=1e-5)  # batch composition does not change a vector
    counts = await real_worker.tokens(["hello world", "x " * 400])
    assert counts[0] == 4 and counts[1] > 256  # [CLS] hello world [SEP]; the long one is over the window


async def test_real_model_search_finds_the_code(real_worker: WorkerClient, tmp_path: Path) -> None:
    chunks = {1: "def read_json(path):\n    with open(path) as f:\n        return json.load(f)",
              2: "def connect(host, port):\n    return socket.create_connection((host, port))",
              3: "class Stack:\n    def push(self, item):\n        self.items.append(item)"}
    folder = tmp_path / "tenant" / "project"
    await real_worker.add(folder, list(chunks), texts=list(chunks.values()))
    hits = await real_worker.search(folder, texts=["open a tcp connection to a server", "load json from a file"], k=3)
    assert [h[0].id for h in hits] == [2, 1]
    manifest = await real_worker.save(folder)
    assert manifest["model_id"] == real_worker.info["model_id"] and manifest["count"] == 3
