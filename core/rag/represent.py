"""What the code-search index embeds and what it indexes lexically, for a chunk and for a query (light).

These three functions are the single source of the text the production index uses, and the
retrieval-quality benchmark (``benchmarks/bench_retrieval_quality.py``) measures exactly them, so a
change here is a change to the measured figures in docs/search.md ("Retrieval quality").

Why this shape (measured on the tuning split, see docs/search.md): all-MiniLM-L6-v2 was trained on
sentences, not code, and it reads at most 256 word pieces.  Embedding the whole body buries the
parts that say what a function is for under its implementation; the qualified name, the
signature and the first few lines of the body (where docstring-less code usually states its
intent: argument checks, the first call) give a better vector.  The lexical side keeps the whole
chunk: BM25 profits from every identifier, and the path and qualified name make exact-name
queries land.
"""

from __future__ import annotations

from core.rag.chunks import Chunk

#: Lines of the body (after the signature, blank lines skipped) that go into the embedded text.
PASSAGE_LINES = 8


def _body_after_signature(chunk: Chunk) -> str:
    """The chunk's text after its signature (decorators and the def line are in the header already)."""
    sig = chunk.signature.strip()
    if sig:
        at = chunk.text.find(sig)
        if at >= 0:
            return chunk.text[at + len(sig):]
    return chunk.text


def passage_text(chunk: Chunk) -> str:
    """The text embedded for ``chunk``: qualified name, signature, then the first body lines."""
    header = [line for line in (chunk.symbol.strip(), chunk.signature.strip()) if line]
    body = [line.rstrip() for line in _body_after_signature(chunk).splitlines() if line.strip()]
    return "\n".join(header + body[:PASSAGE_LINES])


def lexical_text(chunk: Chunk) -> str:
    """The text BM25 indexes for ``chunk``: its path, qualified name, signature and whole text."""
    parts = [chunk.path, chunk.symbol, chunk.signature, _body_after_signature(chunk)]
    return "\n".join(p for p in parts if p)


def query_text(query: str) -> str:
    """The text embedded for a search query (whitespace collapsed; MiniLM takes no query prefix)."""
    return " ".join(query.split())
