"""Parse spec documents (Markdown): requirements, design elements, tasks — in each layout's own form.

- **MUSUBI** (global IDs): a heading ``REQ-<COMP>[-<SUB>]-NNN: title`` (a bare
  ``#### REQ-X-001`` takes its parent heading's title; ``[REQ-X-001]`` brackets
  are dropped).  The statement is the EARS text: a paragraph, the text after a
  statement label (``**EARS Statement**:``, ``**Description**:``, ...) or the
  fenced block right after such a label — never a metadata line
  (``**Type**: Event-Driven``).  Acceptance criteria are the list items after an
  "Acceptance Criteria" label or heading, up to the next labelled block.
- **Kiro** (``.kiro/specs/<feature>/``): ``### Requirement N`` with its user story
  and numbered acceptance criteria ``N.M``; tasks ``- [ ] 2.1 ...`` citing
  ``_Requirements: 1.1, 2.3_``.
- **Spec Kit** (``specs/<feature>/``): ``- **FR-001**: System MUST ...`` and
  ``SC-001`` definitions, tasks ``- [ ] T001 [P] [US1] ...``.

Kiro and Spec Kit IDs are local to their feature: the artefact ID is
``<feature>:<local>`` (see :mod:`core.trace.forms`).  Design elements are ADR
headings, C4 headings and, in feature folders, any section citing a
requirement.  Table rows whose first cell is an ID are traceability links.
Fenced code blocks are skipped (except a statement's own block).  Lines are
split on ``\\n`` with a trailing ``\\r`` dropped, so CRLF files give the same
line numbers as LF files.
"""

from __future__ import annotations

import re

from core.trace import forms as K
from core.trace.ids import IdPatterns
from core.trace.spec_model import (  # noqa: F401  (re-exported: the models live with the parser's helpers)
    CHECK,
    FENCE,
    HEADING,
    LIST,
    Ctx,
    DesignElement,
    Mention,
    Requirement,
    RowLink,
    SpecDoc,
    Task,
    clean,
    code_mask,
    lead_token,
    own_id,
    parent_title,
    section_end,
    split_lines,
)
from core.trace.spec_parts import design as _design
from core.trace.spec_parts import tasks as _tasks

_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+")
_META = re.compile(r"^\s*(?:[-*+]\s+)?[*_]{0,2}(priority|status|state)[*_]{0,2}\s*:\s*[*_]{0,2}\s*(.*?)\s*[*_]{0,2}\s*$", re.I)
_PLAIN_META = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:type|pattern|category|kind|owner|source|rationale|dependencies|related|traceability|date|"
    r"author|version|verification|risk|id)\s*:", re.I)
_LABEL = re.compile(r"^\s*[*_]{0,2}(?:statement|ears|requirement)[*_]{0,2}\s*:\s*[*_]{0,2}", re.I)
_PRIORITY = re.compile(r"\bP[0-3]\b")
_STORY_WANT = re.compile(r"\bI want(?: to)?\s+(.*?)(?:,?\s+so that\b|$)", re.I)
TITLE_MAX = 80


normalize_status = K.normalize_status


def locate(path: str) -> tuple[str, str | None]:
    """(layout, feature) a spec file's location implies."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[0] == ".kiro" and parts[1] == "specs":
        return "kiro", parts[2]
    if len(parts) == 3 and parts[0] == "specs":
        return "speckit", parts[1]
    if len(parts) == 4 and parts[0] == ".specify" and parts[1] == "specs":
        return "speckit", parts[2]
    if parts[0] == "storage":
        return "musubi", None
    return "custom", None


def parse_spec(text: str, path: str, role: str, ids: IdPatterns) -> SpecDoc:
    """Parse one spec file of ``role`` (requirements, design or tasks)."""
    lines = split_lines(text)
    in_code = code_mask(lines)
    layout, feature = locate(path)
    doc = SpecDoc(path, role, layout=layout, feature=feature)
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    for i, ln in enumerate(lines):
        if not in_code[i]:
            m = HEADING.match(ln)
            if m:
                headings.append((i, len(m.group(1)), m.group(2)))
    kiro = layout == "kiro" or any(K.KIRO_REQ_HEADING.match(clean(t)) for _i, _l, t in headings)
    speckit = layout == "speckit" or any(K.SPECKIT_DEF.match(ln) and "**" in ln for ln in lines[:2000] if "FR-" in ln)
    ctx = Ctx(ids, lines, in_code, headings, feature or path.rsplit(".", 1)[0], kiro, speckit)
    for i, _lvl, text_ in headings:
        tok, _title = lead_token(text_)
        if tok and ids.malformed_prefix(tok) and not ids.kind_of(tok):
            doc.malformed.append(Mention(tok, i + 1))
    ctx.table_rows(doc)
    if role == "requirements":
        _requirements(doc, ctx)
    elif role == "design":
        _design(doc, ctx)
    else:
        _tasks(doc, ctx)
    found = set(ctx.forms)
    found.update(r.form if r.form != "id" else "musubi" for r in doc.requirements)
    doc.forms = sorted(found)
    return doc


# -- requirements --------------------------------------------------------------------------


def _requirements(doc: SpecDoc, ctx: Ctx) -> None:
    ids, lines, headings = ctx.ids, ctx.lines, ctx.headings
    for k, (i, _lvl, text_) in enumerate(headings):
        tok, title = lead_token(text_)
        end = section_end(headings, k, len(lines))
        kiro = K.KIRO_REQ_HEADING.match(clean(text_)) if ctx.kiro else None
        local = K.SPECKIT_LOCAL.fullmatch(tok) if ctx.speckit and not ids.kind_of(tok) else None
        if ids.kind_of(tok) != "requirement":
            own = own_id(ctx, i, end, "requirement")
            if own:
                tok, title = own, clean(text_)
        if ids.kind_of(tok) == "requirement":
            if not title:
                title = parent_title(headings, k)
            req = Requirement(tok, title, doc.path, i + 1, feature=doc.feature)
            _fill(req, ctx, i + 1, end, None)
            req.cites = ctx.mentions(i, end, tok)
        elif kiro:
            num = kiro.group(1)
            req = Requirement(ctx.scoped(num), clean(kiro.group(2)), doc.path, i + 1, feature=doc.feature, form="kiro")
            _fill(req, ctx, i + 1, end, num)
            if not req.title:
                want = _STORY_WANT.search(req.statement)
                req.title = _title_of(want.group(1) if want else req.statement) or f"Requirement {num}"
            req.cites = [m for m in ctx.mentions(i, end, "") if m.id != req.id]
        elif local:
            req = Requirement(ctx.scoped(tok), title, doc.path, i + 1, feature=doc.feature, form="speckit",
                              statement_kind="speckit")
            _fill(req, ctx, i + 1, end, None)
            req.statement_kind = "speckit"
            req.title = req.title or _title_of(req.statement)
            req.cites = [m for m in ctx.mentions(i, end, "") if m.id != req.id]
        else:
            continue
        doc.requirements.append(req)
    if ctx.speckit:
        _speckit_items(doc, ctx)


def _title_of(text: str) -> str:
    t = clean(text).rstrip(".")
    if len(t) <= TITLE_MAX:
        return t[:1].upper() + t[1:]
    cut = t[:TITLE_MAX].rsplit(" ", 1)[0]
    return cut[:1].upper() + cut[1:] + "…"


def _speckit_items(doc: SpecDoc, ctx: Ctx) -> None:
    """``- **FR-001**: System MUST ...`` definitions (bold list items), with their continuation lines."""
    lines = ctx.lines
    for j, ln in enumerate(lines):
        if ctx.in_code[j] or ("FR-" not in ln and "SC-" not in ln):
            continue
        m = K.SPECKIT_DEF.match(ln)
        if not m or ctx.ids.kind_of(m.group(1)):
            continue
        if not re.match(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)", ln) and not re.match(r"^\s*[-*+]\s+\S+\s*:", ln):
            continue  # prose that merely starts with the ID
        text = [clean(m.group(2))]
        end = j + 1
        while end < len(lines) and lines[end].strip() and lines[end].startswith((" ", "\t")) and not LIST.match(lines[end]):
            text.append(clean(lines[end]))
            end += 1
        rid = ctx.scoped(m.group(1))
        statement = " ".join(t for t in text if t)
        req = Requirement(rid, _title_of(statement), doc.path, j + 1, statement=statement, statement_line=j + 1,
                          feature=doc.feature, form="speckit", statement_kind="speckit")
        req.cites = [x for x in ctx.mentions(j, end, "") if x.id != rid]
        doc.requirements.append(req)


def _fill(req: Requirement, ctx: Ctx, start: int, end: int, kiro_num: str | None) -> None:
    """Statement, criteria, priority and status of one requirement section."""
    lines, in_code = ctx.lines, ctx.in_code
    cands: list[tuple[int, int, str]] = []  # (rank, line, text): the best rank is the statement
    para: list[tuple[int, str]] = []
    para_done = False
    pending: int | None = None  # rank of a statement label whose text follows
    in_ac = False

    def flush() -> None:
        nonlocal para, para_done
        if para and not para_done:
            text = " ".join(t for _n, t in para if t).strip()
            if text:
                story = text.lower().startswith(("as a ", "as an "))
                cands.append((3 if story else K.PLAIN_STATEMENT, para[0][0], text))
            para_done = True
        para = []

    def paragraph(j: int) -> tuple[str, int]:
        out = []
        while j < end and not in_code[j] and lines[j].strip() and not HEADING.match(lines[j]) \
                and not K.BOLD_LABEL.match(lines[j]) and not LIST.match(lines[j]):
            out.append(clean(lines[j].lstrip("> ")))
            j += 1
        return " ".join(o for o in out if o), j

    j = start
    while j < end:
        ln = lines[j]
        if in_code[j]:
            if pending is not None and not in_ac and FENCE.match(ln):
                k, body = j + 1, []
                while k < end and not FENCE.match(lines[k]):
                    body.append(lines[k].strip())
                    k += 1
                text = clean(" ".join(b for b in body if b))
                if text:
                    cands.append((pending, j + 2, text))
                pending = None
                j = k + 1
                continue
            j += 1
            continue
        h = HEADING.match(ln)
        if h:
            flush()
            in_ac, pending = bool(K.AC.search(h.group(2))), None
            if in_ac:
                req.criteria_line = j + 1
            j += 1
            continue
        lab = K.BOLD_LABEL.match(ln)
        if lab:
            flush()
            key, rest = lab.group(1).strip().lower(), lab.group(2).strip()
            in_ac, pending = bool(K.AC.search(key)), None
            if in_ac:
                req.criteria_line = j + 1
            elif key in K.STATEMENT_LABELS:
                rank = K.STATEMENT_LABELS[key]
                if clean(rest):
                    more, nxt = paragraph(j + 1)
                    cands.append((rank, j + 1, (clean(rest) + " " + more).strip()))
                    j = nxt
                    continue
                pending = rank
            elif key == "priority":
                _priority(req, rest)
            elif key in K.STATUS_LABELS:
                req.status = K.normalize_status(clean(rest))
            j += 1
            continue
        meta = _META.match(ln)
        if meta:
            flush()
            if meta.group(1).lower() == "priority":
                _priority(req, meta.group(2))
            else:
                req.status = K.normalize_status(clean(meta.group(2)))
            j += 1
            continue
        item = LIST.match(ln)
        if K.AC.search(ln) and not item:
            flush()
            in_ac, pending = True, None
            req.criteria_line = j + 1
            j += 1
            continue
        if in_ac:
            if item:
                text_ = item.group(2).strip()
                chk = CHECK.match(text_)
                req.criteria.append(clean(chk.group(2) if chk else text_))
                req.criteria_lines.append(j + 1)
                if kiro_num is not None:
                    num = _NUMBERED.match(ln)
                    n = num.group(1) if num else str(len(req.criteria))
                    req.criteria_ids.append(ctx.scoped(f"{kiro_num}.{n}"))
            elif ln.strip() and req.criteria and ln.startswith((" ", "\t")):
                req.criteria[-1] += " " + clean(ln)
            j += 1
            continue
        if not ln.strip():
            flush()
            j += 1
            continue
        if pending is not None:
            text, nxt = paragraph(j)
            if text:
                cands.append((pending, j + 1, text))
                pending = None
                j = max(nxt, j + 1)
                continue
            pending = None
        if not para_done and not item and not _PLAIN_META.match(ln):
            para.append((j + 1, clean(_LABEL.sub("", ln.lstrip("> ").strip()))))
        elif para:
            flush()
        j += 1
    flush()
    if cands:
        rank, line, text = min(cands, key=lambda c: (c[0], c[1]))
        req.statement, req.statement_line = text, line
        if rank == 3:
            req.statement_kind = "story"  # the criteria carry the EARS
    elif req.form == "kiro":
        req.statement_kind = "story"


def _priority(req: Requirement, raw: str) -> None:
    val = clean(raw)
    pm = _PRIORITY.search(val.upper())
    req.priority = pm.group(0) if pm else val


