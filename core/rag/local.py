"""An in-process hybrid search over one folder, for evaluations (HEAVY: torch, bm25s on first use).

The engine searches through its index service (core/rag/service.py): chunks in DuckDB, vectors in
the worker.  Evaluations (benchmarks/bench_suggest.py, the real-model suggestion test) need the
same ranking over a small folder without an engine: the same walk, chunking, embedded and
lexical texts (core/rag/represent.py), candidate count and fusion, all in this process.

``mask`` rewrites each chunk's text before it is embedded and indexed: the suggestion evaluation
removes requirement and task IDs from the code, so the links the scanner found through them are
hidden from the search it measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.rag.chunks import Chunk
from core.rag.fusion import CANDIDATES, fuse, weights_for

Hit = dict[str, Any]


class LocalSearch:
    """``search(query, k)`` over the chunks of ``root`` (hits shaped as ``POST /v1/search`` results)."""

    def __init__(self, root: str | Path, embedder: Any, *, mask: Callable[[str], str] | None = None,
                 exclude: tuple[str, ...] = (), max_bytes: int | None = None) -> None:
        from core.rag.chunking import chunk_file, language_of
        from core.rag.lexical import LexicalIndex
        from core.rag.represent import lexical_text, passage_text
        from core.rag.textio import read_text
        from core.rag.walk import DEFAULT_MAX_BYTES, iter_files

        self.chunks: list[Chunk] = []
        for f in iter_files(root, exclude=exclude, max_bytes=max_bytes or DEFAULT_MAX_BYTES):
            text = read_text(f.abspath)
            if text is None:
                continue
            for c in chunk_file(f.path, text, language=language_of(f.path)):
                self.chunks.append(replace(c, text=mask(c.text), signature=mask(c.signature)) if mask else c)
        self.embedder = embedder
        ids = list(range(len(self.chunks)))
        self.vectors = embedder.encode([passage_text(c) for c in self.chunks]) if self.chunks else None
        self.lexical = LexicalIndex.build(ids, [lexical_text(c) for c in self.chunks])

    def __call__(self, query: str, k: int = 10) -> list[Hit]:
        from core.rag.represent import query_text

        n = min(CANDIDATES, len(self.chunks))
        if not n:
            return []
        q = self.embedder.encode([query_text(query)], query=True)[0]
        scores = self.vectors @ q
        order = scores.argsort()[::-1][:n]
        dense = [(int(i), float(scores[i])) for i in order]
        lexical = self.lexical.search(query, n)
        out: list[Hit] = []
        w_dense, w_lexical = weights_for(query)  # as the engine's search (core/rag/service.py)
        for cid, score in fuse(dense, lexical, w_dense=w_dense, w_lexical=w_lexical)[:k]:
            c = self.chunks[cid]
            out.append({"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol,
                        "language": c.language, "score": round(float(score), 6), "snippet": c.text})
        return out
