"""The deterministic fake embedder used by plumbing tests (core/rag/embedder.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.rag.embedder import FakeEmbedder, default_threads


def test_fake_embedder_is_deterministic_normalised_and_graded() -> None:
    a, b = FakeEmbedder(64), FakeEmbedder(64)
    texts = ["def parse_json(text): ...", "open a socket", "", "!!!"]
    va, vb = a.encode(texts), b.encode(texts)
    assert va.dtype == np.float32 and va.shape == (4, 64)
    assert np.array_equal(va, vb)
    assert np.allclose(np.linalg.norm(va, axis=1), 1.0, atol=1e-6)
    near = a.encode(["parse json text", "parse json data", "socket server"])
    assert near[0] @ near[1] > near[0] @ near[2]
    assert a.encode([]).shape == (0, 64)
    assert a.model_id != FakeEmbedder(32).model_id


def test_fake_embedder_is_the_same_in_another_process() -> None:
    code = "from core.rag.embedder import FakeEmbedder; print(FakeEmbedder(16).encode(['hello world']).tobytes().hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert bytes.fromhex(out.stdout.strip()) == FakeEmbedder(16).encode(["hello world"]).tobytes()


def test_default_threads_leave_a_core_free() -> None:
    assert 1 <= default_threads() <= max(1, (os.cpu_count() or 2) // 2)
