"""Read tutorial files strictly: a malformed file is one error naming the file, the line and what is wrong.

``tomllib`` parses (its own errors carry the line); :class:`tutorials.model.Tutorial` validates;
each pydantic error's location (``steps[2].check.op``) is mapped back to the line that holds it
by :func:`line_of`, a small scanner of the file's tables and keys.  The shipped tutorials are
``tutorials/content/*.toml``; an author may add a folder whose files add to or replace them
(``MUSUBI_TUTORIALS_DIR`` in the engine, docs/tutorials.md).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import BadRequest
from tutorials.model import STEP_KINDS, Tutorial

CONTENT_DIR = Path(__file__).parent / "content"
SAMPLE_DIR = Path(__file__).parent / "sample"
MAX_FILE_BYTES = 512 * 1024

_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\-]+)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=")


class TutorialFileError(BadRequest):
    """A tutorial file that cannot be read or does not validate (exit 2, HTTP 400)."""

    code = "bad_tutorial"


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Where each table and key of a TOML text is: key path -> 1-based line (first occurrence)."""
    found: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    quote: str | None = None  # inside a multi-line string opened by this delimiter
    for n, line in enumerate(text.splitlines(), 1):
        if quote is not None:
            if line.count(quote) % 2 == 1:
                quote = None
            continue
        if m := _ARRAY_HEADER.match(line):
            base: tuple[Any, ...] = tuple(m[1].split("."))
            i = counts.get(base, 0)
            counts[base] = i + 1
            table = (*base, i)
            found.setdefault(table, n)
        elif m := _TABLE_HEADER.match(line):
            parts = m[1].split(".")
            # [steps.check] belongs to the last [[steps]] item
            if len(parts) > 1 and (parts[0],) in counts:
                table = (parts[0], counts[(parts[0],)] - 1, *parts[1:])
            else:
                table = tuple(parts)
            found.setdefault(table, n)
        elif m := _KEY.match(line):
            path = (*table, m[1])
            found.setdefault(path, n)
            rest = line[m.end():]
            for im in _INLINE_KEY.finditer(rest):
                found.setdefault((*path, im[1]), n)
        for delim in ("'''", '"""'):
            if line.count(delim) % 2 == 1:
                quote = delim
                break
    return found


def _clean_loc(loc: Sequence[Any]) -> tuple[Any, ...]:
    """A pydantic location without the discriminator tags (``steps, 2, 'state', check`` -> ``steps, 2, check``)."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in STEP_KINDS and i >= 2 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return tuple(out)


def line_of(text: str, loc: Sequence[Any]) -> int:
    """The line of ``loc`` in ``text``: the key itself, else its nearest enclosing table or key (else 1)."""
    found = _key_lines(text)
    path = _clean_loc(loc)
    while path:
        if path in found:
            return found[path]
        path = path[:-1]
    return 1


def where(loc: Sequence[Any]) -> str:
    """``steps[2].check.op`` for a location."""
    out = ""
    for part in _clean_loc(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return "unknown key (a typo? see docs/tutorials.md for the keys of each step kind)"
    if err.get("type") == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return f"unknown step kind {tag!r}; one of {', '.join(STEP_KINDS)}"
    if err.get("type") == "union_tag_not_found":
        return f"the step has no kind; give kind = one of {', '.join(STEP_KINDS)}"
    return msg.removeprefix("Value error, ")


def parse(text: str, name: str) -> Tutorial:
    """Validate the TOML ``text`` of the file ``name``; :class:`TutorialFileError` on the first problems."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_AT.search(str(exc))
        line = m[1] if m else "1"
        what = _TOML_AT.sub("", str(exc)).strip()
        raise TutorialFileError(f"{name}:{line}: not valid TOML: {what}. Fix the line (docs/tutorials.md shows "
                                "the format).") from None
    try:
        tut = Tutorial.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        lines = [f"{name}:{line_of(text, e['loc'])}: {where(e['loc'])}: {_message(dict(e))}" for e in errs[:5]]
        more = f" (and {len(errs) - 5} more)" if len(errs) > 5 else ""
        raise TutorialFileError("tutorial file does not validate" + more + ":\n" + "\n".join(lines)) from None
    stem = Path(name).stem
    if tut.id != stem:
        raise TutorialFileError(f"{name}:{line_of(text, ('id',))}: id {tut.id!r} must be the file's name "
                                f"({stem!r}); rename the file or the id.")
    return tut


def load_file(path: Path) -> Tutorial:
    """One tutorial file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TutorialFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; split the tutorial.")
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise TutorialFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except OSError as exc:
        raise TutorialFileError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    return parse(text, str(path))


def files_in(folders: Iterable[Path]) -> list[Path]:
    """The ``*.toml`` files of ``folders`` (missing folders are skipped), in name order per folder."""
    out: list[Path] = []
    for d in folders:
        if d.is_dir():
            out.extend(sorted(p for p in d.glob("*.toml") if p.is_file()))
    return out


def load_all(folders: Sequence[Path] = (CONTENT_DIR,)) -> dict[str, Tutorial]:
    """Every tutorial of ``folders``; a later folder's file replaces an earlier one with the same id."""
    out: dict[str, Tutorial] = {}
    for p in files_in(folders):
        t = load_file(p)
        out[t.id] = t
    return dict(sorted(out.items(), key=lambda kv: (kv[1].order, kv[0])))
