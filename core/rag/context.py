"""Context packs: the best search hits packed into a token budget, with a manifest (light, pure).

:func:`pack` takes search hits (``path``, ``start_line``, ``end_line``, ``symbol``, ``language``,
``score`` and the chunk's ``text``) and returns a :class:`ContextPack`: the text to put in a prompt
and a manifest of what is in it and what was left out and why.  It is a pure function of its
arguments (no engine, no index, no clock), so ``POST /v1/context``, the cost estimator's retrieval
budget and the orchestrator all get the same pack for the same hits.

How (docs/search.md "Context packs"):

1. Hits are taken best score first (ties: the order given).
2. A hit below ``min_score`` is left out (``below_floor``).  A hit whose text is the same as one
   already taken (same content hash, e.g. a vendored copy) or whose lines lie inside a block
   already taken is left out (``duplicate``, ``detail`` names the block).
3. A hit that overlaps or touches a block of the same file (``end + 1 >= start``; with ``files``,
   also when only blank lines lie between them) is merged into it: one block with the union of
   the lines, the best score and both symbols.  Merging can join several blocks.
4. Otherwise it is a new block.  A block (or the growth a merge costs) that does not fit what is
   left of the budget is left out (``over_budget``, with the tokens it needed); smaller hits
   further down may still fit.
5. The blocks are ordered by path, then line.

Token counts: ``count`` (a function of text) counts each rendered block; ``used`` is their sum.
Each block starts with a letter right after a newline, a point no pre-token of the exact
encodings spans (core/models/tokens.py), so for o200k_base and cl100k_base ``used`` is exactly the
count of the whole pack text (tested).  For estimated tokenizer families it is the sum of the
blocks' estimates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadRequest
from core.limits import CONTEXT_BUDGET

Counter = Callable[[str], int]

REASONS = ("over_budget", "duplicate", "below_floor", "unavailable")


@dataclass
class Block:
    """One contiguous run of lines of one file in the pack."""

    path: str
    start_line: int
    end_line: int
    language: str
    lines: list[str]
    symbols: list[str]
    score: float
    hashes: set[str] = field(default_factory=set)
    merged: int = 1  # how many hits it holds
    tokens: int = 0

    def render(self) -> str:
        """The block as it appears in the pack: a header line, then the lines in a fence."""
        body = "\n".join(self.lines)
        ticks = max([3, *(len(run) + 1 for run in re.findall(r"`{3,}", body))])
        fence = "`" * ticks
        sym = f" ({', '.join(s for s in self.symbols if s)})" if any(self.symbols) else ""
        head = f"File {self.path} lines {self.start_line}-{self.end_line}{sym}"
        return f"{head}\n{fence}{self.language}\n{body}\n{fence}\n\n"

    def manifest(self) -> dict[str, Any]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
                "symbols": [s for s in self.symbols if s], "language": self.language, "score": self.score,
                "tokens": self.tokens, "hits": self.merged}


@dataclass(frozen=True)
class Omitted:
    """A hit left out of the pack, and why (one of :data:`REASONS`)."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    reason: str
    detail: str = ""
    tokens: int | None = None  # over_budget: what it would have cost

    def manifest(self) -> dict[str, Any]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line, "symbol": self.symbol,
                "score": self.score, "reason": self.reason, "detail": self.detail, "tokens": self.tokens}


@dataclass(frozen=True)
class ContextPack:
    """The packed text and its manifest."""

    model: str
    budget: int
    used: int
    blocks: tuple[Block, ...]
    omitted: tuple[Omitted, ...]

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    @property
    def text(self) -> str:
        return "".join(b.render() for b in self.blocks)

    def manifest(self) -> dict[str, Any]:
        """What was included (path, lines, symbols, score, tokens), what was left out and why, totals."""
        reasons = {r: sum(1 for o in self.omitted if o.reason == r) for r in REASONS}
        return {"model": self.model, "budget": self.budget, "used": self.used, "remaining": self.remaining,
                "included": [b.manifest() for b in self.blocks], "omitted": [o.manifest() for o in self.omitted],
                "omitted_by_reason": reasons}

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, **self.manifest()}


def check_budget(budget: object) -> int:
    """The budget as a whole number of tokens in :data:`core.limits.CONTEXT_BUDGET`; BadRequest otherwise."""
    if isinstance(budget, bool) or not isinstance(budget, int) or not CONTEXT_BUDGET.lo <= budget <= CONTEXT_BUDGET.hi:
        raise BadRequest(f"budget {budget!r} must be {CONTEXT_BUDGET.text()}, e.g. --budget 8000.", field="budget")
    return budget


def _lines_of(text: str) -> list[str]:
    return text.split("\n") if text else [""]


def _hash(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def _touches(b: Block, start: int, end: int, files: Mapping[str, Sequence[str]] | None) -> bool:
    """Whether lines ``start..end`` overlap or touch ``b`` (with ``files``: or only blank lines lie between)."""
    if start <= b.end_line + 1 and end + 1 >= b.start_line:
        return True
    if files is None or b.path not in files:
        return False
    src = files[b.path]
    lo, hi = (b.end_line, start - 1) if start > b.end_line else (end, b.start_line - 1)
    return hi <= len(src) and all(not src[i - 1].strip() for i in range(lo + 1, hi + 1))


def _union(blocks: Iterable[Block], start: int, end: int, lines: list[str],
           files: Mapping[str, Sequence[str]] | None) -> tuple[int, int, list[str]]:
    """Lines ``lo..hi`` covering ``blocks`` and the new range, each line from whoever holds it."""
    have: dict[int, str] = {start + i: s for i, s in enumerate(lines)}
    for b in blocks:
        for i, s in enumerate(b.lines):
            have.setdefault(b.start_line + i, s)
    lo, hi = min(have), max(have)
    path = next(iter(blocks)).path
    src = (files or {}).get(path)
    # A gap can only be blank lines of the file (see _touches); without the file it cannot occur.
    return lo, hi, [have[n] if n in have else (src[n - 1] if src else "") for n in range(lo, hi + 1)]


def pack(hits: Sequence[Mapping[str, Any]], *, budget: int, model: str, count: Counter,
         min_score: float | None = None, files: Mapping[str, Sequence[str]] | None = None) -> ContextPack:
    """Pack ``hits`` into ``budget`` tokens of ``model`` as counted by ``count`` (see the module docstring).

    Each hit needs ``path``, ``start_line``, ``end_line``, ``score`` and ``text`` (exactly those
    lines; ``None`` when they could not be read: left out as ``unavailable``); ``symbol`` and
    ``language`` are optional.  ``files`` maps a path to its current lines (index 0 is line 1):
    when given, a hit's text comes from there and blocks separated only by blank lines merge.
    """
    check_budget(budget)
    order = sorted(range(len(hits)), key=lambda i: (-float(hits[i]["score"]), i))
    blocks: list[Block] = []
    omitted: list[Omitted] = []
    used = 0
    for i in order:
        h = hits[i]
        path, start, end = str(h["path"]), int(h["start_line"]), int(h["end_line"])
        symbol, score = str(h.get("symbol") or ""), float(h["score"])

        def leave(reason: str, detail: str = "", tokens: int | None = None,
                  _p: str = path, _s: int = start, _e: int = end, _y: str = symbol, _c: float = score) -> None:
            omitted.append(Omitted(_p, _s, _e, _y, _c, reason, detail, tokens))

        if min_score is not None and score < min_score:
            leave("below_floor", f"score {score:g} < {min_score:g}")
            continue
        src = (files or {}).get(path)
        if src is not None and 1 <= start <= end <= len(src):
            lines = list(src[start - 1:end])
        elif h.get("text") is not None:
            lines = _lines_of(str(h["text"]))
        else:
            leave("unavailable", "its lines could not be read (file moved or deleted since it was indexed)")
            continue
        end = start + len(lines) - 1
        digest = _hash(lines)
        same = next((b for b in blocks if digest in b.hashes), None)
        inside = next((b for b in blocks if b.path == path and b.start_line <= start and end <= b.end_line), None)
        if same is not None or inside is not None:
            b = same or inside
            assert b is not None
            leave("duplicate", f"same lines as {b.path}:{b.start_line}-{b.end_line}" if same is not None
                  else f"inside {b.path}:{b.start_line}-{b.end_line}")
            continue
        near = [b for b in blocks if b.path == path and _touches(b, start, end, files)]
        lo, hi, union = _union(near, start, end, lines, files) if near else (start, end, lines)
        first = {s: b.start_line for b in sorted(near, key=lambda b: -b.start_line) for s in b.symbols}
        if symbol and first.get(symbol, start) >= start:
            first[symbol] = start
        symbols = sorted(first, key=lambda s: (first[s], s))  # in line order: where each first appears
        new = Block(path, lo, hi, str(h.get("language") or ""), union, symbols,
                    max([score, *(b.score for b in near)]), {digest, *(x for b in near for x in b.hashes)},
                    1 + sum(b.merged for b in near))
        new.tokens = count(new.render())
        freed = sum(b.tokens for b in near)
        if used - freed + new.tokens > budget:
            cost = new.tokens - freed
            leave("over_budget", f"needs {cost:,} tokens, {budget - used:,} left", cost)
            continue
        blocks = [b for b in blocks if all(b is not n for n in near)] + [new]
        used += new.tokens - freed
    blocks.sort(key=lambda b: (b.path, b.start_line))
    return ContextPack(model, budget, used, tuple(blocks), tuple(omitted))
