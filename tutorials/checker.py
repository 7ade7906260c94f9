"""The step checker: a JSON path into an engine answer and one of a fixed set of comparisons.

Pure (no I/O, no textual, never ``eval``): the engine reads the route of a step's check as the
user in the sandbox, then calls :func:`evaluate` on the answer.  Operators (``OPERATORS`` in
tutorials/model.py; docs/tutorials.md has the table):

- ``eq`` ``ne``: equal / not equal (``1 == 1.0``; ``True`` is not ``1``);
- ``lt`` ``le`` ``gt`` ``ge``: both numbers, or both strings; anything else does not hold;
- ``contains`` ``not_contains``: a substring of a string, an element of a list, a key of an object;
- ``exists`` ``missing``: the path leads to a value (``null`` counts as a value) / does not;
- ``len_eq`` ``len_ge`` ``len_le``: the length of a string, list or object;
- ``truthy`` ``falsy``: JSON truthiness (``0``, ``""``, ``[]``, ``{}``, ``false``, ``null`` are falsy);
- ``matches``: a regular expression found in a string (``re.search``).

A path with ``[*]`` maps over a list (``$.findings[*].rule`` is the list of every finding's rule).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tutorials.model import JSON_PATH, OPERATORS

_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\*|-?[0-9]+)\]")
_MISSING = object()


@dataclass(frozen=True)
class Outcome:
    """Whether the check holds, what was seen (``None`` when the path led nowhere) and why, in words."""

    ok: bool
    observed: Any
    detail: str


def parts(path: str) -> list[str | int]:
    """``$.a[0].b`` -> ``["a", 0, "b"]``; ``[*]`` stays ``"*"``.  ValueError on a malformed path."""
    if not JSON_PATH.match(path):
        raise ValueError(f"{path!r} is not a JSON path such as $.name or $.items[0].id")
    out: list[str | int] = []
    for m in _PART.finditer(path):
        if m[1] is not None:
            out.append(m[1])
        else:
            out.append("*" if m[2] == "*" else int(m[2]))
    return out


def resolve(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``, or :data:`_MISSING` (see :func:`found`)."""
    return _walk(data, parts(path))


def found(value: Any) -> bool:
    return value is not _MISSING


def _walk(node: Any, rest: list[str | int]) -> Any:
    for i, part in enumerate(rest):
        if part == "*":
            if not isinstance(node, list):
                return _MISSING
            items = [_walk(x, rest[i + 1:]) for x in node]
            return [x for x in items if x is not _MISSING]
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return _MISSING
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
    return node


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _compare(op: str, seen: Any, want: Any) -> bool | str:
    """True/False, or a string saying why the two cannot be compared."""
    if op == "eq":
        return _same(seen, want)
    if op == "ne":
        return not _same(seen, want)
    if op in ("lt", "le", "gt", "ge"):
        if not ((_num(seen) and _num(want)) or (isinstance(seen, str) and isinstance(want, str))):
            return f"cannot order {_show(seen)} against {_show(want)} (both must be numbers, or both text)"
        return {"lt": seen < want, "le": seen <= want, "gt": seen > want, "ge": seen >= want}[op]
    if op in ("contains", "not_contains"):
        if isinstance(seen, str):
            if not isinstance(want, str):
                return f"text can only contain text, not {_show(want)}"
            has = want in seen
        elif isinstance(seen, list):
            has = any(_same(x, want) for x in seen)
        elif isinstance(seen, dict):
            has = isinstance(want, str) and want in seen
        else:
            return f"{_show(seen)} is not text, a list or an object"
        return has if op == "contains" else not has
    if op in ("len_eq", "len_ge", "len_le"):
        if not isinstance(seen, (str, list, dict)):
            return f"{_show(seen)} has no length"
        n = len(seen)
        return {"len_eq": n == want, "len_ge": n >= want, "len_le": n <= want}[op]
    if op == "truthy":
        return bool(seen)
    if op == "falsy":
        return not seen
    if op == "matches":
        if not isinstance(seen, str):
            return f"{_show(seen)} is not text"
        try:
            return re.search(str(want), seen) is not None
        except re.error as exc:
            return f"bad regular expression {want!r}: {exc}"
    raise ValueError(f"unknown operator {op!r}; one of {', '.join(OPERATORS)}")


def evaluate(data: Any, path: str, op: str, value: Any = None) -> Outcome:
    """Check ``op value`` on the value at ``path`` of ``data`` (an engine answer, already JSON)."""
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r}; one of {', '.join(OPERATORS)}")
    seen = resolve(data, path)
    if op == "exists":
        return Outcome(found(seen), None if not found(seen) else seen,
                       f"{path} is {_show(seen)}" if found(seen) else f"{path} is not there yet")
    if op == "missing":
        return Outcome(not found(seen), None if not found(seen) else seen,
                       f"{path} is not there" if not found(seen) else f"{path} is still there: {_show(seen)}")
    if not found(seen):
        return Outcome(False, None, f"{path} is not there yet (expected {op} {_show(value)})")
    r = _compare(op, seen, value)
    want = "" if op in ("truthy", "falsy") else f" {_show(value)}"
    if isinstance(r, str):
        return Outcome(False, seen, f"{path}: {r}")
    verdict = "holds" if r else "does not hold yet"
    return Outcome(r, seen, f"{path} is {_show(seen)}: {op}{want} {verdict}")
