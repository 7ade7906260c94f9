"""Reading agent and workflow files: TOML syntax, and where in the file a bad key sits.

A bad file is never a traceback: :class:`SpecError` names the file, the line and the
fix.  tomllib reports the line of a syntax error itself; for a schema error the key's
line is found from the error's location (``workflow.spec.steps[2].join``) by
:func:`locate`, which follows ``[table]`` / ``[[array]]`` headers and then the keys and
inline tables under them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import ConfigError

Loc = tuple[str | int, ...]


class SpecError(ConfigError):
    """An agents or workflows file (shipped, user or project) that cannot be used (CLI exit 2)."""

    code = "bad_workflow_file"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (a key path), what, and how to fix it."""

    loc: Loc
    message: str
    fix: str = ""


def loc_text(loc: Loc) -> str:
    """``workflow.spec.steps[2].join`` for ``("workflow", "spec", "steps", 2, "join")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_spec_file(path: Path, text: str | None = None) -> tuple[dict[str, Any], str] | None:
    """The parsed file and its text (``text`` given: parse that); None when the file does not exist."""
    import tomllib

    if text is None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise SpecError(f"{path} is a folder; it must be a TOML file. Move the folder aside.") from None
        except OSError as exc:
            raise SpecError(f"cannot read {path}: {exc.strerror}. Check its permissions.") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"{path} is not UTF-8 text; save it as UTF-8.") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:
            m = re.search(r"line (\d+)", str(exc))
            line = int(m.group(1)) if m else None
        where = f", line {line}" if line else ""
        hint = ""
        bad = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
        if bad.count("{") > bad.count("}") or (line and line > 1 and "{" in text.splitlines()[line - 2]
                                               and "}" not in text.splitlines()[line - 2]):
            hint = (" An inline table { ... } must stay on one line: put the step on one line, or write it as a "
                    "[[workflow.NAME.steps]] table.")
        raise SpecError(f"{path}{where}: not valid TOML: {exc}. Fix the syntax there.{hint}", file=str(path)) from None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _split_key(dotted: str) -> list[str]:
    """``workflow."my wf".steps`` -> ['workflow', 'my wf', 'steps'] (bare and quoted keys)."""
    return [p.strip().strip("\"'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted)]


def _headers(lines: Sequence[str]) -> dict[Loc, int]:
    """Each table header's resolved location (array indices filled in) -> its 1-based line."""
    out: dict[Loc, int] = {}
    counts: dict[Loc, int] = {}
    current: dict[tuple[str, ...], Loc] = {}  # array-of-tables path -> its latest resolved location
    for i, line in enumerate(lines, 1):
        m = _HEADER.match(line)
        if not m:
            continue
        keys = _split_key(m.group(2))
        resolved: list[str | int] = []
        for j, k in enumerate(keys[:-1]):
            prefix = tuple(keys[: j + 1])
            resolved = list(current[prefix]) if prefix in current else [*resolved, k]
        resolved.append(keys[-1])
        if m.group(1) == "[[":
            key = tuple(resolved)
            counts[key] = counts.get(key, -1) + 1
            resolved.append(counts[key])
            current[tuple(keys)] = tuple(resolved)
        out[tuple(resolved)] = i
    return out


def locate(text: str | None, loc: Loc) -> int | None:
    """The 1-based line of the key at ``loc`` in ``text``, best effort (None when not found)."""
    if not text:
        return None
    lines = text.splitlines()
    heads = _headers(lines)
    start, used = 0, 0
    for n in range(len(loc), 0, -1):
        if loc[:n] in heads:
            start, used = heads[loc[:n]], n
            break
    if used == 0 and loc and isinstance(loc[0], str):
        # a dotted header further down, e.g. [workflow.spec] for loc ("workflow", "spec", ...)
        for n in range(len(loc), 0, -1):
            hit = next((v for k, v in heads.items() if k[:n] == loc[:n]), None)
            if hit:
                return hit
    line = start  # 0-based index of the line after the header (or 0: top of the file)
    last = start or None
    for part in loc[used:]:
        found = _find_key(lines, line, part) if isinstance(part, str) else _find_element(lines, line, part)
        if found is None:
            break
        line, last = found, found + 1
    return last


def _find_key(lines: Sequence[str], start: int, key: str) -> int | None:
    """The first line at or after ``start`` (before the next header) that sets ``key``."""
    pat = re.compile(rf'(^|[{{,\s])("{re.escape(key)}"|{re.escape(key)})\s*=')
    for j in range(start, len(lines)):
        if j > start and _HEADER.match(lines[j]):
            return None
        if pat.search(lines[j]):
            return j
    return None


def _find_element(lines: Sequence[str], start: int, index: int) -> int | None:
    """The line where the ``index``-th inline table of the array opened on line ``start`` begins."""
    depth, seen, quote = 0, -1, ""
    opened = False
    for j in range(start, len(lines)):
        for ch in lines[j]:
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                if ch == "[" and not opened:
                    opened = True
                    depth = 1
                    continue
                if opened and ch == "{" and depth == 1:
                    seen += 1
                    if seen == index:
                        return j
                depth += 1
            elif ch in "]}" and opened:
                depth -= 1
                if depth == 0:
                    return None
            elif ch == "#" and not quote:
                break
    return None


def format_problems(source: str, text: str | None, problems: Sequence[Problem], what: str) -> str:
    """The message of a :class:`SpecError`: one line per problem with its line and fix."""
    out = [f"{what} {source} is invalid:"]
    for p in problems:
        line = locate(text, p.loc)
        where = f" (line {line})" if line else ""
        fix = f" Fix: {p.fix}" if p.fix else ""
        out.append(f"  - {loc_text(p.loc)}{where}: {p.message}.{fix}")
    out.append("See docs/workflows.md for the file formats.")
    return "\n".join(out)
