"""Retrieval evaluation shared by the benchmark and embedder tuning (light: ``ast``; numpy inside functions).

The measures of ``benchmarks/bench_retrieval_quality.py`` (docs/search.md, "The evaluation"): a
function with a docstring becomes a target chunk (its code with the docstring removed, in the
``Chunk`` shape the indexer produces) whose query is the docstring's first sentence; a ranking is
scored by recall@1, recall@10 and MRR with one relevant chunk per query.  Embedder tuning
(core/tune) mines its docstring pairs with :func:`doc_targets` and judges a tuned model with
:func:`metrics` over :func:`dense_top`, so "better" means the same thing in both places.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.rag.chunks import Chunk

MIN_WORDS, MAX_WORDS = 4, 40

__all__ = ["MAX_WORDS", "MIN_WORDS", "DocTarget", "dense_top", "doc_targets", "first_sentence", "functions",
           "metrics"]


@dataclass(frozen=True, slots=True)
class DocTarget:
    """A function's code without its docstring (``chunk``) and the docstring's first sentence (``query``)."""

    chunk: Chunk
    query: str


def first_sentence(doc: str) -> str:
    """The docstring's first sentence: its first paragraph, joined, cut after the first '. '."""
    para = " ".join(doc.strip().split("\n\n", 1)[0].split())
    m = re.search(r"(?<=[.!?])\s", para)
    return para[:m.start()] if m else para


def functions(tree: ast.AST) -> list[tuple[str, str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, kind, node) for every def, nested in classes and functions."""
    out: list[tuple[str, str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", True)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((f"{prefix}{child.name}", "method" if in_class else "function", child))
                visit(child, f"{prefix}{child.name}.", False)
            else:
                visit(child, prefix, in_class)

    visit(tree, "", False)
    return out


def doc_targets(rel: str, source: str) -> list[DocTarget]:
    """The functions of one Python file whose docstring sits on its own lines and whose first sentence has
    ``MIN_WORDS``-``MAX_WORDS`` words: their code with the docstring removed, and that sentence."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    items = []
    for qualname, kind, node in functions(tree):
        doc = ast.get_docstring(node)
        if not doc or len(node.body) < 2 or node.end_lineno is None:
            continue
        dnode = node.body[0]
        d_end = dnode.end_lineno or dnode.lineno
        if dnode.lineno <= node.lineno or node.body[1].lineno <= d_end:
            continue  # docstring shares a line with the def or the next statement
        query = first_sentence(doc)
        if not MIN_WORDS <= len(query.split()) <= MAX_WORDS:
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        signature = "\n".join(lines[node.lineno - 1:dnode.lineno - 1]).strip()
        kept = lines[start - 1:dnode.lineno - 1] + lines[d_end:node.end_lineno]
        chunk = Chunk(path=rel, start_line=start, end_line=node.end_lineno, language="python", kind=kind,
                      symbol=qualname, signature=signature, text="\n".join(kept))
        items.append(DocTarget(chunk, query))
    return items


def dense_top(qvecs: Any, cvecs: Any, k: int) -> list[list[tuple[int, float]]]:
    """Exact inner-product top-k (what a flat FAISS index returns), ids = corpus positions, best first."""
    sims = qvecs @ cvecs.T
    k = min(k, sims.shape[1])
    import numpy as np

    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    out = []
    for row, cand in zip(sims, top, strict=True):
        order = sorted(cand.tolist(), key=lambda i: (-row[i], i))
        out.append([(int(i), float(row[i])) for i in order])
    return out


def metrics(rankings: Sequence[Sequence[int]], targets: Sequence[int]) -> tuple[float, float, float]:
    """(recall@1, recall@10, MRR) — one relevant chunk per query, MRR over the full candidate list."""
    if not targets:
        return (float("nan"),) * 3
    r1 = r10 = rr = 0.0
    for ranking, target in zip(rankings, targets, strict=True):
        if target in ranking:
            pos = list(ranking).index(target) + 1
            r1 += pos == 1
            r10 += pos <= 10
            rr += 1.0 / pos
    n = len(targets)
    return r1 / n, r10 / n, rr / n
