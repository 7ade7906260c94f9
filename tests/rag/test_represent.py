"""represent: exact embedded/indexed texts; the modules stay light; and hybrid >= dense with the real model."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from core.rag.chunks import Chunk
from core.rag.represent import PASSAGE_LINES, lexical_text, passage_text, query_text
from core.rag.worker_client import WorkerClient

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''@functools.cache
def load_table(path: str,
               *, strict: bool = False) -> dict[str, int]:
    rows = {}

    for line in open(path):
        key, _, value = line.partition("=")
        if not key:
            continue
        rows[key] = int(value)
        if strict and value < 0:
            raise ValueError(key)
        log(key)
        count += 1
        final = 1
    return rows'''

SIGNATURE = "def load_table(path: str,\n               *, strict: bool = False) -> dict[str, int]:"


def test_passage_text_is_name_signature_and_first_body_lines() -> None:
    chunk = Chunk(path="pkg/tables.py", start_line=10, end_line=25, language="python", kind="function",
                  symbol="Loader.load_table", signature=SIGNATURE, text=SOURCE)
    assert PASSAGE_LINES == 8
    assert passage_text(chunk) == "\n".join([
        "Loader.load_table",
        SIGNATURE,
        "    rows = {}",
        "    for line in open(path):",  # the blank line does not count
        '        key, _, value = line.partition("=")',
        "        if not key:",
        "            continue",
        "        rows[key] = int(value)",
        "        if strict and value < 0:",
        "            raise ValueError(key)",
    ])


def test_passage_text_of_a_later_part_repeats_the_signature() -> None:
    part = Chunk(path="a.py", start_line=40, end_line=41, language="python", kind="function", symbol="f",
                 signature="def f(x):", text="    y = x + 1\n    return y", part=2)
    assert passage_text(part) == "f\ndef f(x):\n    y = x + 1\n    return y"


def test_passage_text_without_symbol_or_signature() -> None:
    window = Chunk(path="notes.txt", start_line=1, end_line=3, language="text", kind="window", symbol="",
                   signature="", text="first\n\nsecond\n")
    assert passage_text(window) == "first\nsecond"


def test_markdown_section() -> None:
    sec = Chunk(path="docs/a.md", start_line=3, end_line=5, language="markdown", kind="section",
                symbol="Intro > Setup", signature="## Setup", text="## Setup\n\nRun it.\n")
    assert passage_text(sec) == "Intro > Setup\n## Setup\nRun it."
    assert lexical_text(sec) == "docs/a.md\nIntro > Setup\n## Setup\n\n\nRun it.\n"


def test_lexical_text_has_path_symbol_signature_and_whole_body() -> None:
    chunk = Chunk(path="pkg/tables.py", start_line=10, end_line=25, language="python", kind="function",
                  symbol="Loader.load_table", signature=SIGNATURE, text=SOURCE)
    text = lexical_text(chunk)
    assert text.startswith(f"pkg/tables.py\nLoader.load_table\n{SIGNATURE}\n")
    assert text.endswith("    return rows")
    assert text.count("def load_table") == 1  # the signature is not indexed twice


def test_query_text() -> None:
    assert query_text("  Return the\n value\tof x ") == "Return the value of x"
    assert query_text("") == ""


def test_light_modules_import_nothing_heavy() -> None:
    code = ("import sys, core.rag, core.rag.chunks, core.rag.represent, core.rag.fusion\n"
            "heavy = {'numpy', 'torch', 'sentence_transformers', 'faiss', 'bm25s', 'Stemmer', 'tree_sitter'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


@pytest.mark.asyncio(loop_scope="session")  # the session's warm worker (conftest.py) lives on that loop
async def test_hybrid_beats_or_equals_dense_with_the_real_model(real_worker: WorkerClient) -> None:
    """~60 functions of the standard library's pathlib, queried by their docstrings' first sentences."""
    import numpy as np

    from benchmarks.bench_retrieval_quality import dense_top, file_items, metrics
    from core.rag.fusion import CANDIDATES, fuse
    from core.rag.lexical import LexicalIndex

    path = Path(sysconfig.get_paths()["stdlib"]) / "pathlib.py"
    items = file_items("pathlib.py", path.read_text(encoding="utf-8"))
    assert len(items) >= 50
    queries = [query_text(it.query) for it in items]

    async def encode(texts: list[str], query: bool) -> np.ndarray:
        r = await real_worker.embed(texts, query=query)  # normalised, as the index stores them
        return np.frombuffer(r.data, dtype=np.float32).reshape(r.n, r.dim)

    qv = await encode(queries, True)
    cv = await encode([passage_text(it.chunk) for it in items], False)
    dense = dense_top(qv, cv, CANDIDATES)
    lex = LexicalIndex.build(range(len(items)), [lexical_text(it.chunk) for it in items])
    lexical = [lex.search(q, CANDIDATES) for q in queries]
    targets = list(range(len(items)))
    _, dense_r10, dense_mrr = metrics([[i for i, _ in d] for d in dense], targets)
    hybrid = [[i for i, _ in fuse(d, x)] for d, x in zip(dense, lexical, strict=True)]
    _, hybrid_r10, hybrid_mrr = metrics(hybrid, targets)
    assert dense_r10 > 0.5  # a real model: a broken or fake embedder lands near 10 / len(items)
    assert hybrid_r10 >= dense_r10
    assert hybrid_mrr >= dense_mrr
