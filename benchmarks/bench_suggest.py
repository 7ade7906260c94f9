"""Suggested trace links: precision@3 and recall per score threshold, with the real model.

Corpora: the repository's trace fixture (tests/fixtures/trace_repo, built with its extra files
by tests/trace/fixture.py) and any spec-driven repository given with ``--repo DIR`` (Kiro,
Spec Kit or MUSUBI layout, with code that cites requirement or task IDs).  Per corpus the known
code and test links (IDs the trace scanner finds) are the ground truth; they are hidden from the
suggester: the rows it sees have none and the code is indexed with every ID masked
(core/trace/suggest_eval.py).  Search is the shipped hybrid ranking (all-MiniLM-L6-v2 +
BM25, z-sum fusion) run in-process (core/rag/local.py).

Prints, per corpus and threshold: suggestions made (top 3 per requirement), correct ones,
precision@3, known pairs found, recall, F1, F0.5; and the threshold with the best mean F0.5.  Baseline in the
same run: a threshold of -inf (every suggestion kept).
Run: ``python benchmarks/bench_suggest.py [--repo DIR ...]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import table  # noqa: E402
from core.trace.service import TraceService  # noqa: E402
from core.trace.suggest import THRESHOLD  # noqa: E402
from core.trace.suggest_eval import Point, best, mask_ids, measure  # noqa: E402

THRESHOLDS = (float("-inf"), 0.0, 0.5, 0.75, 1.0, 1.1, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5)


def load_embedder() -> object:
    from core.rag.embedder import SentenceEmbedder
    from core.rag.model import resolve_model

    return SentenceEmbedder(resolve_model(), threads=1)


def corpus(label: str, root: Path, embedder: object, *, all_files: bool = False) -> tuple[list[Point], float]:
    from core.rag.local import LocalSearch

    t0 = time.perf_counter()
    trace = TraceService().trace("bench", root)
    cfg = trace.scan.config
    search = LocalSearch(root, embedder, mask=mask_ids, exclude=tuple(cfg.exclude),
                         max_bytes=None if all_files else cfg.max_file_bytes)
    points = measure(trace, search, THRESHOLDS)
    print(f"{label}: {len(trace.rows)} requirements, {len(trace.tasks)} tasks, {len(search.chunks)} chunks "
          f"({time.perf_counter() - t0:.1f} s)")
    return points, time.perf_counter() - t0


def rows(label: str, points: list[Point]) -> list[list[object]]:
    return [[label, f"{p.threshold:g}", p.suggested, p.correct, f"{p.precision:.2f}", f"{p.found}/{p.known}",
             f"{p.recall:.2f}", f"{p.f1:.2f}", f"{p.f05:.2f}", "<- shipped" if p.threshold == THRESHOLD else ""]
            for p in points]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", action="append", default=[], help="a spec-driven repository to measure too")
    args = ap.parse_args(argv)
    from tests.trace.fixture import build_repo

    embedder = load_embedder()
    out: list[list[object]] = []
    runs: list[list[Point]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fixture = build_repo(Path(tmp) / "trace_repo", git=True)
        # The fixture as the trace sees it (40 chunks: every chunk is a candidate), and with its 140 kB
        # generated file indexed too (385 chunks: full 100-candidate lists, as in any real project).
        corpora = [("trace fixture", fixture, False), ("fixture+filler", fixture, True),
                   *((Path(r).name, Path(r), False) for r in args.repo)]
        for label, root, all_files in corpora:
            points, _ = corpus(label, root, embedder, all_files=all_files)
            out += rows(label, points)
            runs.append(points)
    print(table("Suggested links: precision@3 and recall per threshold (ground truth hidden)",
                ["corpus", "threshold", "suggested", "correct", "P@3", "found", "recall", "F1", "F0.5", ""], out))
    print(f"best mean F0.5 over the fixture runs at threshold {best(runs[:2]):g}; over every corpus measured "
          f"at {best(runs):g} (shipped: {THRESHOLD:g}, chosen over every corpus)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
