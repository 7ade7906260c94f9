"""What every chunker shares: lines, token budgets, line windows, and turning a tree of
definitions into chunks (light).

Budget.  all-MiniLM-L6-v2 reads at most ``max_tokens`` (256) word pieces including its
[CLS] and [SEP]; a chunk's text gets ``max_tokens - 2`` (times :data:`ESTIMATE_MARGIN` with
the default estimate) minus the pieces of its symbol and
signature, so a passage that repeats the qualified name and signature before the text
(as :mod:`core.rag.represent` may) still fits.  Counts are summed per line: WordPiece never
joins across whitespace, so the sum equals the count of the joined text.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.rag.chunks import Chunk

TokenCounter = Callable[[str], int]

SPECIAL_TOKENS = 2  # [CLS] and [SEP]
_NEWLINES = re.compile(r"\r\n|\r|\n")
# Lines that only close a block carry nothing to search for: a window of only these is dropped.
_CLOSER = re.compile(r"\s*(?:[})\];,]+|end|\?>)\s*")
# BERT's basic tokenizer splits at whitespace and at every punctuation mark (``_`` included)
# and makes each CJK ideograph a word; Hangul runs are matched apart (NFD splits each syllable
# into 2-3 jamo pieces).
_PIECES = re.compile(r"[\uac00-\ud7a3]+|[^\W_]+|[^\s]")
#: Chunks are cut to this share of the budget by the estimate: its error on one chunk is about
#: +-10 %, and this margin keeps real counts under the window for > 99 % of chunks (measured
#: on the standard library; the other corpora of the benchmark are held out).
ESTIMATE_MARGIN = 0.92


def estimate_tokens(text: str) -> int:
    """A cheap estimate of all-MiniLM-L6-v2 word pieces in ``text`` (no [CLS]/[SEP]).

    Per word, fitted on the real tokenizer's counts over the standard library, a TypeScript and
    a Go project (``benchmarks/bench_chunk_lengths.py`` reports the fit): a punctuation mark or
    single character is 1; an ASCII word of up to 6 letters 1.25, longer ones 1/3 more per
    letter (identifiers split into several pieces); a word with digits 0.75 per character (hex
    and numbers split almost per digit); other scripts 1 per character, Hangul 3.
    """
    n = 0.0
    for w in _PIECES.findall(text):
        size = len(w)
        if size == 1:
            n += 1
        elif w.isascii():
            if w.isalpha():
                n += 1.25 if size <= 6 else 1.25 + (size - 6) / 3
            else:
                n += 0.75 * size
        elif "\uac00" <= w[0] <= "\ud7a3":
            n += 3 * size
        else:
            n += size
    return int(n + 0.5)


def split_lines(text: str) -> list[str]:
    """Lines as editors and ``ast`` number them (``\\r\\n``, ``\\r`` and ``\\n`` end a line)."""
    lines = _NEWLINES.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class Source:
    """One file's lines with per-line token counts and the chunk factory."""

    def __init__(
        self, path: str, text: str, language: str, count: TokenCounter | None, max_tokens: int
    ) -> None:
        # The margin covers the estimate's error; an exact counter gets the whole window.
        margin = ESTIMATE_MARGIN if count is None else 1.0
        count = count or estimate_tokens
        self.path = path
        self.language = language
        self.count = count
        self.lines = split_lines(text)
        self.limit = max(8, int((max_tokens - SPECIAL_TOKENS) * margin))
        prefix = [0]
        for line in self.lines:
            prefix.append(prefix[-1] + (count(line) if line.strip() else 0))
        self._prefix = prefix

    @property
    def n(self) -> int:
        return len(self.lines)

    def tokens(self, a: int, b: int) -> int:
        """Pieces in lines a..b (1-based, inclusive)."""
        return self._prefix[b] - self._prefix[a - 1]

    def line_tokens(self, i: int) -> int:
        return self._prefix[i] - self._prefix[i - 1]

    def blank(self, i: int) -> bool:
        return not self.lines[i - 1].strip()

    def closers_only(self, a: int, b: int) -> bool:
        """True if lines a..b only close blocks (``}``, ``);``, Ruby's ``end``) or are blank."""
        return all(_CLOSER.fullmatch(line) or not line.strip() for line in self.lines[a - 1 : b])

    def text(self, a: int, b: int) -> str:
        return "\n".join(self.lines[a - 1 : b])

    def signature(self, a: int, b: int) -> str:
        """Header lines a..b dedented; past a quarter of the window, cut after a whole line and
        marked ``...`` (a 50-parameter ``__init__`` must leave room for its body in every part)."""
        cap = self.limit // 4
        end = a
        while end < b and self.tokens(a, end + 1) <= cap:
            end += 1
        text = textwrap.dedent(self.text(a, end)).strip("\n")
        return text if end == b else text + " ..."

    def budget(self, symbol: str, signature: str) -> int:
        """Pieces a chunk's text may use when its symbol and signature ride along."""
        extra = (self.count(symbol) if symbol else 0) + (self.count(signature) if signature else 0)
        return max(self.limit // 4, self.limit - extra)

    def chunk(
        self, a: int, b: int, kind: str, symbol: str = "", signature: str = "", part: int = 0
    ) -> Chunk:
        return Chunk(self.path, a, b, self.language, kind, symbol, signature, self.text(a, b), part)

    def trim(self, a: int, b: int) -> tuple[int, int] | None:
        """The range without its leading and trailing blank lines, or None if all blank."""
        while a <= b and self.blank(a):
            a += 1
        while b >= a and self.blank(b):
            b -= 1
        return (a, b) if a <= b else None

    def windows(
        self, a: int, b: int, budget: int, good: Callable[[int], bool] | None = None
    ) -> list[tuple[int, int]]:
        """Lines a..b cut into trimmed runs of at most ``budget`` pieces each.

        Windows of only blank and block-closing lines are dropped.  Cuts fall after a blank
        line or a line ``good`` approves (a statement's end) when one lies in the second half
        of a window; windows are balanced (a long body in n parts of
        similar size, not n-1 full ones and a scrap).  A single line over the budget stays
        whole: a chunk is always whole lines.
        """
        out: list[tuple[int, int]] = []
        span = self.trim(a, b)
        if span is None:
            return out
        a, b = span
        total = self.tokens(a, b)
        if total <= budget:
            return [] if self.closers_only(a, b) else [(a, b)]
        parts = -(-total // budget)
        target = min(budget, int(total / parts * 1.15) + 1)
        s = a
        while s <= b:
            used = 0
            e = s
            cut = None
            while e <= b and (e == s or used + self.line_tokens(e) <= target):
                used += self.line_tokens(e)
                at_break = (
                    self.blank(e + 1) or self.blank(e) or (good is not None and good(e))
                    if e < b
                    else False
                )
                if at_break and used * 2 >= target:
                    cut = e
                e += 1
            end = e - 1
            if end < b and cut is not None:
                end = cut
            span = self.trim(s, end)
            if span is not None and not self.closers_only(*span):
                out.append(span)
            s = end + 1
        return out


@dataclass
class Def:
    """A definition found by a parser: lines start..end (decorators and leading comments
    included), its signature lines, and the definitions nested in it."""

    name: str
    kind: str  # "function" | "class" (a function inside a class becomes a "method")
    start: int
    end: int
    sig_start: int
    sig_end: int
    children: list[Def] = field(default_factory=list)


def subtract(a: int, b: int, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of a..b not covered by ``spans`` (sorted, non-overlapping)."""
    out = []
    s = a
    for x, y in sorted(spans):
        if x > s:
            out.append((s, min(x - 1, b)))
        s = max(s, y + 1)
    if s <= b:
        out.append((s, b))
    return out


def emit(src: Source, defs: list[Def], good: Callable[[int], bool] | None = None) -> list[Chunk]:
    """Chunks for a whole file: each definition (see :func:`_emit_def`), the rest as "module" windows."""
    out: list[Chunk] = []
    for a, b in subtract(1, src.n, [(d.start, d.end) for d in defs]):
        for x, y in src.windows(a, b, src.limit, good):
            out.append(src.chunk(x, y, "module"))
    for d in defs:
        _emit_def(src, d, "", False, out, good)
    out.sort(key=lambda c: (c.start_line, c.part))
    return out


def _emit_def(
    src: Source,
    d: Def,
    parent: str,
    in_class: bool,
    out: list[Chunk],
    good: Callable[[int], bool] | None,
) -> None:
    """A function whole if it fits (nested functions inside it); a class as its header and
    members' lines with each method its own chunk; whatever does not fit, split into parts
    that all carry the signature (nested definitions then become chunks of their own)."""
    symbol = f"{parent}.{d.name}" if parent and d.name else (d.name or parent)
    kind = "method" if d.kind == "function" and in_class else d.kind
    signature = src.signature(d.sig_start, d.sig_end)
    budget = src.budget(symbol, signature)
    is_class = d.kind == "class"
    if (not is_class or not d.children) and src.tokens(d.start, d.end) <= budget:
        out.append(src.chunk(d.start, d.end, kind, symbol, signature))
        return
    children = d.children
    own: list[tuple[int, int]] = []
    for a, b in subtract(d.start, d.end, [(c.start, c.end) for c in children]):
        own.extend(src.windows(a, b, budget, good))
    if len(own) == 1:
        out.append(src.chunk(*own[0], kind, symbol, signature))
    else:
        out.extend(src.chunk(a, b, kind, symbol, signature, i) for i, (a, b) in enumerate(own, 1))
    for c in children:
        _emit_def(src, c, symbol, is_class, out, good)


def attach_comments(src: Source, start: int, floor: int, prefixes: tuple[str, ...]) -> int:
    """``start`` moved up over the comment/attribute lines right above it (no blank line between).

    Never past ``floor`` (the previous statement's last line), so no line lands in two chunks.
    """
    while start - 1 > floor and src.lines[start - 2].lstrip().startswith(prefixes):
        start -= 1
    return start
