"""Markdown chunks by heading (light).

A section runs from its heading to the line before the next heading of any level; its
symbol is the heading path (``"Top > Sub"``), its signature the heading line.  ATX headings
(``# Title``, closing ``#``s dropped) and setext headings (a text line underlined with ``===``
or ``---``) count; lines inside ``` or ~~~ fences do not.  YAML front matter (``---`` on line 1
to the next ``---``) is a section of its own with the symbol ``front matter``; text before the
first heading is a section without a symbol.  A heading with nothing under it but a
deeper heading joins that child's chunk (which keeps the child's symbol and signature).
Long sections are split at blank lines into parts carrying the heading.
"""

from __future__ import annotations

import re

from core.rag.chunk_core import Source
from core.rag.chunks import Chunk

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def chunk_markdown(src: Source) -> list[Chunk]:
    """The sections of a Markdown document (see the module docstring)."""
    lines = src.lines
    out: list[Chunk] = []
    first = 1
    if lines and lines[0].strip() == "---":
        close = next(
            (i for i in range(2, len(lines) + 1) if lines[i - 1].strip() in ("---", "...")), 0
        )
        if close:
            _section(src, 1, close, "front matter", lines[0], out)
            first = close + 1
    heads: list[tuple[int, int, int, str]] = []  # (start line, signature end, level, title)
    fence = ""
    for i in range(first, len(lines) + 1):
        line = lines[i - 1]
        m = _FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        m = _ATX.match(line)
        if m:
            heads.append((i, i, len(m.group(1)), (m.group(2) or "").strip()))
            continue
        m = _SETEXT.match(line)
        prev = lines[i - 2] if i - 2 >= first - 1 and i >= 2 else ""
        if (
            m
            and i > first
            and prev.strip()
            and not _ATX.match(prev)
            and (not heads or heads[-1][1] != i - 1)
        ):
            level = 1 if m.group(1)[0] == "=" else 2
            heads.append((i - 1, i, level, prev.strip()))
    if not heads or heads[0][0] > first:
        _section(src, first, (heads[0][0] - 1) if heads else len(lines), "", "", out)
    path: list[tuple[int, str]] = []
    carry = 0  # first line of empty parent headings waiting for their first child
    for k, (start, sig_end, level, title) in enumerate(heads):
        end = heads[k + 1][0] - 1 if k + 1 < len(heads) else len(lines)
        path = [p for p in path if p[0] < level] + [(level, title)]
        if k + 1 < len(heads) and heads[k + 1][2] > level and src.trim(sig_end + 1, end) is None:
            carry = (
                carry or start
            )  # "# Guide" straight followed by "## Install": one chunk, not a bare heading
            continue
        symbol = " > ".join(t for _, t in path)
        _section(src, carry or start, end, symbol, src.text(start, sig_end), out)
        carry = 0
    return out


def _section(src: Source, a: int, b: int, symbol: str, signature: str, out: list[Chunk]) -> None:
    parts = src.windows(a, b, src.budget(symbol, signature))
    if len(parts) == 1:
        out.append(src.chunk(*parts[0], "section", symbol, signature))
    else:
        out.extend(
            src.chunk(x, y, "section", symbol, signature, i) for i, (x, y) in enumerate(parts, 1)
        )
