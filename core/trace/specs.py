"""Parse spec documents (Markdown): requirements, design elements, tasks.

- Requirements: a heading ``REQ-<COMP>[-<SUB>]-NNN: title``; under it the EARS
  statement (first paragraph), ``Priority: P0..P3``, ``Status: ...`` lines and the
  bullets after an "Acceptance Criteria" label or heading.
- Design: ``ADR-NNN`` headings and C4 level headings (Context, Container,
  Component, Code); each cites the requirements mentioned in its section.  A
  design file without such headings is one element (the whole document).
- Tasks: ``TASK-NNN`` / ``TASK-<COMP>-NNN`` as headings or list items
  (``- [x] TASK-AUTH-001: ...``); status from the checkbox or a ``Status:`` line;
  the requirements they serve are those mentioned in the task.

Fenced code blocks are skipped.  Lines are split on ``\\n`` with a trailing
``\\r`` dropped, so CRLF files give the same line numbers as LF files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.trace.ids import IdPatterns

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")
_CHECK = re.compile(r"^\[([ xX~/-])\]\s*(.*)$")
_META = re.compile(r"^\s*(?:[-*+]\s+)?[*_]{0,2}(priority|status|state)[*_]{0,2}\s*:\s*[*_]{0,2}\s*(.*?)\s*[*_]{0,2}\s*$", re.I)
_AC = re.compile(r"acceptance\s+criteria", re.I)
_LABEL = re.compile(r"^\s*[*_]{0,2}(?:statement|ears|requirement)[*_]{0,2}\s*:\s*[*_]{0,2}", re.I)
_PRIORITY = re.compile(r"\bP[0-3]\b")
_C4 = re.compile(
    r"^(?:C4\s*[-:]?\s*)?(?:level\s*[1-4]\s*[-:–—]?\s*)?(system\s+context|context|containers?|components?|code)\b\s*(?:[-:–—]\s*(.*))?$",
    re.I,
)
_STATUS_WORDS = {
    "todo": "todo", "to do": "todo", "pending": "todo", "open": "todo", "not started": "todo", "planned": "todo",
    "in progress": "in-progress", "in-progress": "in-progress", "wip": "in-progress", "doing": "in-progress",
    "done": "done", "complete": "done", "completed": "done", "implemented": "done", "closed": "done",
    "blocked": "blocked",
}
_CHECK_STATUS = {" ": "todo", "x": "done", "X": "done", "~": "in-progress", "/": "in-progress", "-": "in-progress"}


@dataclass
class Mention:
    """An ID written somewhere in a spec file."""

    id: str
    line: int


@dataclass
class Requirement:
    id: str
    title: str
    path: str
    line: int
    statement: str = ""
    statement_line: int = 0
    criteria: list[str] = field(default_factory=list)
    criteria_line: int = 0
    priority: str | None = None
    status: str | None = None
    feature: str | None = None  # Kiro feature folder, when in that layout
    cites: list[Mention] = field(default_factory=list)


@dataclass
class DesignElement:
    id: str
    title: str
    kind: str  # adr | c4 | document
    path: str
    line: int
    level: str | None = None  # C4 level for kind c4
    cites: list[Mention] = field(default_factory=list)


@dataclass
class Task:
    id: str
    title: str
    path: str
    line: int
    status: str = "todo"
    cites: list[Mention] = field(default_factory=list)


@dataclass
class SpecDoc:
    """Everything one spec file defines and mentions."""

    path: str
    role: str  # requirements | design | tasks
    requirements: list[Requirement] = field(default_factory=list)
    design: list[DesignElement] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    malformed: list[Mention] = field(default_factory=list)  # heading tokens that look like IDs but are not

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpecDoc:
        def mentions(xs: list[dict[str, Any]]) -> list[Mention]:
            return [Mention(**x) for x in xs]

        return cls(
            path=d["path"],
            role=d["role"],
            requirements=[Requirement(**{**r, "cites": mentions(r["cites"])}) for r in d["requirements"]],
            design=[DesignElement(**{**e, "cites": mentions(e["cites"])}) for e in d["design"]],
            tasks=[Task(**{**t, "cites": mentions(t["cites"])}) for t in d["tasks"]],
            malformed=mentions(d["malformed"]),
        )


def normalize_status(raw: str) -> str:
    s = raw.strip().strip("*_`").lower()
    return _STATUS_WORDS.get(s, s.split()[0] if s else "")


def split_lines(text: str) -> list[str]:
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def _clean(s: str) -> str:
    return s.replace("**", "").replace("__", "").replace("`", "").strip()


def _lead_token(text: str) -> tuple[str, str]:
    """First token of a heading or item and the title after it (``REQ-A-001: Title`` → both)."""
    t = _clean(text)
    m = re.match(r"([^\s:]+)(.*)$", t)
    if not m:
        return "", t
    return m.group(1).rstrip(".,;"), m.group(2).strip().lstrip(":-–—").strip()


def _kiro_feature(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 4 and parts[0] == ".kiro" and parts[1] == "specs":
        return parts[2]
    return None


def _code_mask(lines: list[str]) -> list[bool]:
    mask, fenced = [], False
    for ln in lines:
        if _FENCE.match(ln):
            fenced = not fenced
            mask.append(True)
        else:
            mask.append(fenced)
    return mask


def parse_spec(text: str, path: str, role: str, ids: IdPatterns) -> SpecDoc:
    """Parse one spec file of ``role`` (requirements, design or tasks)."""
    lines = split_lines(text)
    in_code = _code_mask(lines)
    doc = SpecDoc(path, role)
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    for i, ln in enumerate(lines):
        if not in_code[i]:
            m = _HEADING.match(ln)
            if m:
                headings.append((i, len(m.group(1)), m.group(2)))
    for i, _lvl, text_ in headings:
        tok, _title = _lead_token(text_)
        if tok and ids.malformed_prefix(tok) and not ids.kind_of(tok):
            doc.malformed.append(Mention(tok, i + 1))
    if role == "requirements":
        _requirements(doc, lines, in_code, headings, ids)
    elif role == "design":
        _design(doc, lines, in_code, headings, ids)
    else:
        _tasks(doc, lines, in_code, headings, ids)
    return doc


def _section_end(headings: list[tuple[int, int, str]], k: int, n_lines: int) -> int:
    level = headings[k][1]
    for j in range(k + 1, len(headings)):
        if headings[j][1] <= level:
            return headings[j][0]
    return n_lines


def _mentions(lines: list[str], in_code: list[bool], start: int, end: int, ids: IdPatterns, own: str) -> list[Mention]:
    out = []
    for i in range(start, end):
        if in_code[i]:
            continue
        for _p, tok in ids.find(lines[i]):
            if tok != own:
                out.append(Mention(tok, i + 1))
    return out


def _requirements(doc: SpecDoc, lines: list[str], in_code: list[bool], headings: list[tuple[int, int, str]], ids: IdPatterns) -> None:
    feature = _kiro_feature(doc.path)
    for k, (i, _lvl, text_) in enumerate(headings):
        tok, title = _lead_token(text_)
        if ids.kind_of(tok) != "requirement":
            continue
        end = _section_end(headings, k, len(lines))
        req = Requirement(tok, title, doc.path, i + 1, feature=feature)
        para: list[tuple[int, str]] = []
        in_ac = False
        para_done = False
        for j in range(i + 1, end):
            if in_code[j]:
                continue
            ln = lines[j]
            h = _HEADING.match(ln)
            if h:
                in_ac = bool(_AC.search(h.group(2)))
                if in_ac:
                    req.criteria_line = j + 1
                para_done = para_done or bool(para)
                continue
            meta = _META.match(ln)
            if meta:
                key, val = meta.group(1).lower(), _clean(meta.group(2))
                if key == "priority":
                    pm = _PRIORITY.search(val.upper())
                    req.priority = pm.group(0) if pm else val
                else:
                    req.status = normalize_status(val)
                para_done = para_done or bool(para)
                continue
            if _AC.search(ln) and not _LIST.match(ln):
                in_ac = True
                req.criteria_line = j + 1
                para_done = para_done or bool(para)
                continue
            item = _LIST.match(ln)
            if in_ac:
                if item:
                    req.criteria.append(_clean(item.group(2)))
                elif ln.strip() and req.criteria and ln.startswith((" ", "\t")):
                    req.criteria[-1] += " " + _clean(ln)
                continue
            if not ln.strip():
                para_done = para_done or bool(para)
                continue
            if not para_done and not item:
                body = _LABEL.sub("", ln.lstrip("> ").strip())
                para.append((j + 1, _clean(body)))
        if para:
            req.statement = " ".join(t for _n, t in para if t).strip()
            req.statement_line = para[0][0]
        req.cites = _mentions(lines, in_code, i, end, ids, tok)
        doc.requirements.append(req)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "section"


def _design(doc: SpecDoc, lines: list[str], in_code: list[bool], headings: list[tuple[int, int, str]], ids: IdPatterns) -> None:
    starts: dict[int, DesignElement] = {}
    levels: dict[int, int] = {}
    for i, lvl, text_ in headings:
        tok, title = _lead_token(text_)
        if ids.kind_of(tok) == "design":
            starts[i] = DesignElement(tok, title, "adr", doc.path, i + 1)
        else:
            m = _C4.match(_clean(text_))
            if m:
                level = m.group(1).lower().rstrip("s").replace("system ", "")
                name = (m.group(2) or "").strip() or _clean(text_)
                starts[i] = DesignElement(f"{doc.path}#{_slug(_clean(text_))}", name, "c4", doc.path, i + 1, level=level)
        if i in starts:
            levels[i] = lvl
    doc_el: DesignElement | None = None
    title = next((_clean(t) for _i, lvl, t in headings if lvl == 1), doc.path.rsplit("/", 1)[-1])
    stack: list[tuple[int, DesignElement]] = []  # (level, element) of open sections
    for i, ln in enumerate(lines):
        if i in starts or (not in_code[i] and _HEADING.match(ln)):
            lvl = levels.get(i) or len(_HEADING.match(ln).group(1))  # type: ignore[union-attr]
            while stack and stack[-1][0] >= lvl:
                stack.pop()
            if i in starts:
                stack.append((lvl, starts[i]))
        if in_code[i]:
            continue
        for _p, tok in ids.find(ln):
            target = stack[-1][1] if stack else None
            if target is not None and tok == target.id:
                continue
            if target is None:
                if doc_el is None:
                    doc_el = DesignElement(doc.path, title, "document", doc.path, 1)
                target = doc_el
            target.cites.append(Mention(tok, i + 1))
    if not starts and doc_el is None:
        doc_el = DesignElement(doc.path, title, "document", doc.path, 1)
    doc.design = ([doc_el] if doc_el else []) + [starts[i] for i in sorted(starts)]


def _tasks(doc: SpecDoc, lines: list[str], in_code: list[bool], headings: list[tuple[int, int, str]], ids: IdPatterns) -> None:
    heading_at = {i: (lvl, t) for i, lvl, t in headings}
    n = len(lines)
    for i, ln in enumerate(lines):
        if in_code[i]:
            continue
        if i in heading_at:
            lvl, text_ = heading_at[i]
            check = _CHECK.match(_clean(text_))
            tok, title = _lead_token(check.group(2) if check else text_)
            if ids.kind_of(tok) != "task":
                continue
            end = next((h for h, (hl, _t) in sorted(heading_at.items()) if h > i and hl <= lvl), n)
            status = _CHECK_STATUS[check.group(1)] if check else "todo"
        else:
            item = _LIST.match(ln)
            if not item:
                continue
            check = _CHECK.match(item.group(2).strip())
            tok, title = _lead_token(check.group(2) if check else item.group(2))
            if ids.kind_of(tok) != "task":
                continue
            indent = len(item.group(1).expandtabs(4))
            end = i + 1
            while end < n:
                nxt = lines[end]
                if end in heading_at:
                    break
                if nxt.strip():
                    sub = _LIST.match(nxt)
                    lead = len(nxt) - len(nxt.lstrip())
                    if (sub and len(sub.group(1).expandtabs(4)) <= indent) or (not sub and lead <= indent):
                        break
                end += 1
            status = _CHECK_STATUS[check.group(1)] if check else "todo"
        task = Task(tok, title, doc.path, i + 1, status)
        for j in range(i + 1, end):
            meta = _META.match(lines[j])
            if meta and meta.group(1).lower() in ("status", "state"):
                task.status = normalize_status(meta.group(2))
        task.cites = _mentions(lines, in_code, i, end, ids, tok)
        doc.tasks.append(task)
