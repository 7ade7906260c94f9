"""Design elements and tasks of a spec file (see :mod:`core.trace.specs` for the forms)."""

from __future__ import annotations

import re

from core.trace import forms as K
from core.trace.spec_model import (
    CHECK,
    HEADING,
    LIST,
    Ctx,
    DesignElement,
    Mention,
    SpecDoc,
    Task,
    clean,
    lead_token,
    own_id,
    parent_title,
    section_end,
)

_C4 = re.compile(
    r"^(?:C4\s*[-:]?\s*)?(?:level\s*[1-4]\s*[-:–—]?\s*)?(system\s+context|context|containers?|components?|code)\b\s*(?:[-:–—]\s*(.*))?$",
    re.I,
)
_META_STATUS = re.compile(
    r"^\s*(?:[-*+]\s+)?[*_]{0,2}(?:status|state)[*_]{0,2}\s*:\s*[*_]{0,2}\s*(.*?)\s*[*_]{0,2}\s*$", re.I
)
_CHECK_STATUS = {" ": "todo", "x": "done", "X": "done", "~": "in-progress", "/": "in-progress", "-": "in-progress"}
_SPECKIT_MARKERS = re.compile(r"^(?:\s*\[(?:P|US\d+)\])+\s*")
_TASK_HEADING = re.compile(r"^Task\s+[\d.]+\s*[:.\-–—]?\s*", re.I)


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "section"


def _is_requirement(ctx: Ctx, rid: str) -> bool:
    return ":" in rid or ctx.ids.kind_of(rid) == "requirement"


def design(doc: SpecDoc, ctx: Ctx) -> None:
    """ADR and C4 headings, and in feature folders every section that cites a requirement."""
    ids, lines, in_code, headings = ctx.ids, ctx.lines, ctx.in_code, ctx.headings
    starts: dict[int, DesignElement] = {}
    levels: dict[int, int] = {}
    for k, (i, lvl, text_) in enumerate(headings):
        tok, title = lead_token(text_)
        if ids.kind_of(tok) == "design":
            starts[i] = DesignElement(tok, title or parent_title(headings, k), "adr", doc.path, i + 1)
        elif m := _C4.match(clean(text_)):
            level = m.group(1).lower().rstrip("s").replace("system ", "")
            name = (m.group(2) or "").strip() or clean(text_)
            starts[i] = DesignElement(f"{doc.path}#{slug(clean(text_))}", name, "c4", doc.path, i + 1, level=level)
        elif ctx.kiro or ctx.speckit:
            nxt = headings[k + 1][0] if k + 1 < len(headings) else len(lines)
            if any(_is_requirement(ctx, x.id) for x in ctx.mentions(i, nxt, "")):
                starts[i] = DesignElement(f"{doc.path}#{slug(clean(text_))}", clean(text_), "section", doc.path, i + 1)
                ctx.forms.add("kiro" if ctx.kiro else "speckit")
        if i in starts:
            levels[i] = lvl
    doc_el: DesignElement | None = None
    title = next((clean(t) for _i, lvl, t in headings if lvl == 1), doc.path.rsplit("/", 1)[-1])
    stack: list[tuple[int, DesignElement]] = []  # (level, element) of open sections
    carry = False
    for i, ln in enumerate(lines):
        if i in starts or (not in_code[i] and HEADING.match(ln)):
            lvl = levels.get(i) or len(HEADING.match(ln).group(1))  # type: ignore[union-attr]
            while stack and stack[-1][0] >= lvl:
                stack.pop()
            if i in starts:
                stack.append((lvl, starts[i]))
        if in_code[i] or i in ctx.consumed:
            carry = False
            continue
        found, carry = ctx.line_mentions(i, carry)
        for men in found:
            target = stack[-1][1] if stack else None
            if target is not None and men.id == target.id:
                continue
            if target is None:
                if doc_el is None:
                    doc_el = DesignElement(doc.path, title, "document", doc.path, 1)
                target = doc_el
            target.cites.append(men)
    if not starts and doc_el is None:
        doc_el = DesignElement(doc.path, title, "document", doc.path, 1)
    doc.design = ([doc_el] if doc_el else []) + [starts[i] for i in sorted(starts)]


def _item_task(ctx: Ctx, ln: str) -> Task | None:
    """The task a list line defines (Spec Kit ``T001``, Kiro ``2.1``, or a task ID), or None."""
    ids = ctx.ids
    m = K.SPECKIT_TASK.match(ln)
    if m and not ids.kind_of(m.group(3)):
        rest = m.group(4)
        story = re.search(r"\[(US\d+)\]", rest[:40])
        t = Task(ctx.scoped(m.group(3)), clean(_SPECKIT_MARKERS.sub("", rest)), "", 0, _CHECK_STATUS[m.group(2)],
                 parallel=bool(re.match(r"^(?:\s*\[US\d+\])*\s*\[P\]", rest)), story=story.group(1) if story else None)
        return t
    if ctx.kiro:
        m = K.KIRO_TASK.match(ln)
        if m:
            return Task(ctx.scoped(f"task-{m.group(4)}"), clean(m.group(5)), "", 0, _CHECK_STATUS[m.group(2)],
                        optional=m.group(3) == "*")
    item = LIST.match(ln)
    if not item:
        return None
    body = item.group(2).strip()
    check = CHECK.match(body)
    tok, title = lead_token(check.group(2) if check else body)
    if ids.kind_of(tok) != "task":
        return None
    if check is None and sum(1 for _p, t in ids.find(ln) if ids.kind_of(t) == "task") > 1:
        return None  # "1. TASK-001 → TASK-002": an order, not a definition
    return Task(tok, title, "", 0, _CHECK_STATUS[check.group(1)] if check else "todo", weak=check is None)


def tasks(doc: SpecDoc, ctx: Ctx) -> None:
    """Tasks as headings (or ``### Task 1.1`` + ``**ID**:``) and as list items; summary lists are references."""
    lines, in_code, headings = ctx.lines, ctx.in_code, ctx.headings
    head_k = {i: k for k, (i, _l, _t) in enumerate(headings)}
    n = len(lines)
    stack: list[tuple[int, int]] = []  # (level, line) of the open headings
    found: list[Task] = []
    for i, ln in enumerate(lines):
        if in_code[i]:
            continue
        above: list[Mention] = []
        if i in head_k:
            k = head_k[i]
            _i, lvl, text_ = headings[k]
            while stack and stack[-1][0] >= lvl:
                stack.pop()
            stack.append((lvl, i))
            check = CHECK.match(clean(text_))
            tok, title = lead_token(check.group(2) if check else text_)
            end = section_end(headings, k, n)
            if ctx.ids.kind_of(tok) != "task":
                own = own_id(ctx, i, end, "task")
                if not own:
                    continue
                tok, title = own, _TASK_HEADING.sub("", clean(text_)) or clean(text_)
            task = Task(tok, title, doc.path, i + 1, _CHECK_STATUS[check.group(1)] if check else "todo")
        else:
            if not LIST.match(ln):
                continue
            t = _item_task(ctx, ln)
            if t is None:
                continue
            task = t
            task.path, task.line = doc.path, i + 1
            if ":" in task.id:
                ctx.forms.add("kiro" if ":task-" in task.id else "speckit")
            end = _item_end(ctx, i)
            # A task inherits what its section headings cite ("## Phase 10: Release (FR-044)").
            for _lvl, h in stack:
                above += [m for m in ctx.mentions(h, h + 1, task.id) if _is_requirement(ctx, m.id)]
        for j in range(i + 1, end):
            meta = _META_STATUS.match(lines[j])
            if meta and not in_code[j]:
                task.status = K.normalize_status(meta.group(1))
        task.cites = above + ctx.mentions(i, end, task.id)
        found.append(task)
    strong = {t.id for t in found if not t.weak}
    seen: set[str] = set()
    for t in found:
        if t.weak and (t.id in strong or t.id in seen):
            continue  # a summary line naming a task defined elsewhere in the file
        seen.add(t.id)
        doc.tasks.append(t)


def _item_end(ctx: Ctx, i: int) -> int:
    """Where a list item ends: the first line not indented under it, a heading, or a nested task."""
    lines, n = ctx.lines, len(ctx.lines)
    item = LIST.match(lines[i])
    indent = len(item.group(1).expandtabs(4)) if item else 0
    end = i + 1
    while end < n:
        nxt = lines[end]
        if not ctx.in_code[end] and HEADING.match(nxt):
            break
        if nxt.strip() and not ctx.in_code[end]:
            sub = LIST.match(nxt)
            lead = len(nxt) - len(nxt.lstrip())
            if (sub and len(sub.group(1).expandtabs(4)) <= indent) or (not sub and lead <= indent):
                break
            if sub and _item_task(ctx, nxt) is not None:
                break
        end += 1
    return end
