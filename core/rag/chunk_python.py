"""Python chunks from the standard library's ``ast`` (light).

Definitions are found at module level, in class bodies and in function bodies, also inside
``if``/``try``/``with``/``for``/``while``/``match`` blocks (``if sys.platform == ...: def f``).
A definition's lines start at its first decorator, or at the comment lines right above it;
its signature is the ``def``/``class`` line(s) up to the header's colon.  Windows prefer to
cut after a statement's last line.  Returns ``None`` when the file does not parse (the
caller then falls back to line windows).
"""

from __future__ import annotations

import ast

from core.rag.chunk_core import Def, Source, attach_comments, emit
from core.rag.chunks import Chunk

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def chunk_python(src: Source) -> list[Chunk] | None:
    """The chunks of a Python source, or ``None`` if it has a syntax error."""
    try:
        tree = ast.parse("\n".join(src.lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    ends: set[int] = set()
    defs = _defs(src, tree.body, 0, ends)
    return emit(src, defs, ends.__contains__)


def _defs(src: Source, body: list[ast.stmt], floor: int, ends: set[int]) -> list[Def]:
    """The definitions directly in ``body`` (looking through compound statements)."""
    out: list[Def] = []
    prev_end = floor
    for stmt in body:
        if stmt.end_lineno is not None:
            ends.add(stmt.end_lineno)  # every statement passes here: its end is a good place to cut
        if isinstance(stmt, _DEFS):
            out.append(_def(src, stmt, prev_end, ends))
        else:
            for block in _blocks(stmt):
                out.extend(_defs(src, block, prev_end, ends))
        prev_end = stmt.end_lineno or prev_end
    return out


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists inside a compound statement (except handlers and match cases hold their own)."""
    out: list[list[ast.stmt]] = []
    for name in _BLOCK_FIELDS:
        items = getattr(stmt, name, None) or []
        if items and isinstance(items[0], ast.stmt):
            out.append(items)
        else:  # ast.ExceptHandler / ast.match_case
            out.extend(item.body for item in items)
    return out


def _def(
    src: Source,
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
    floor: int,
    ends: set[int],
) -> Def:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    start = attach_comments(src, first, floor, ("#",))
    sig_end = header_end(src.lines, node.lineno, node.col_offset, node.end_lineno or node.lineno)
    kind = "class" if isinstance(node, ast.ClassDef) else "function"
    return Def(
        node.name,
        kind,
        start,
        node.end_lineno or node.lineno,
        node.lineno,
        sig_end,
        _defs(src, node.body, sig_end, ends),
    )


def header_end(lines: list[str], row: int, col: int, last: int) -> int:
    """The line of the colon that ends a ``def``/``class`` header starting at (row, col).

    Skips brackets, strings and comments, so defaults like ``x=(1, 2)`` or ``s=":"`` and
    multi-line parameter lists end where Python says.
    """
    depth = 0
    quote = ""
    r, c = row, col
    while r <= last:
        line = lines[r - 1]
        while c < len(line):
            ch = line[c]
            if quote:
                if ch == "\\":
                    c += 2
                    continue
                if line.startswith(quote, c):
                    c += len(quote)
                    quote = ""
                    continue
            elif ch in "\"'":
                quote = ch * 3 if line.startswith(ch * 3, c) else ch
                c += len(quote)
                continue
            elif ch == "#":
                break
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == ":" and depth == 0:
                return r
            c += 1
        if len(quote) == 1:
            quote = ""  # a one-quote string never spans lines
        r += 1
        c = 0
    return row
