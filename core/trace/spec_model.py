"""The spec parser's data model and shared helpers (lines, fences, sections, mentions, matrix tables)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from core.trace import forms as K
from core.trace.ids import IdPatterns

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
LIST = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")
CHECK = re.compile(r"^\[([ xX~/-])\]\s*(.*)$")
_TABLE_RULE = re.compile(r"^:?-{2,}:?$")


@dataclass
class Mention:
    """An ID written somewhere in a spec file (``via``: the form cited, when it differs, e.g. a Kiro criterion)."""

    id: str
    line: int
    via: str = ""
    path: str = ""  # set when the mention lives in another file than its artefact (matrix tables)


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
    feature: str | None = None  # the feature folder (Kiro, Spec Kit)
    cites: list[Mention] = field(default_factory=list)
    criteria_lines: list[int] = field(default_factory=list)
    criteria_ids: list[str] = field(default_factory=list)  # full IDs of Kiro criteria ("billing:2.3")
    form: str = "id"  # id (MUSUBI heading) | kiro | speckit
    statement_kind: str = "ears"  # ears | story (Kiro user story: the criteria are the EARS) | speckit


@dataclass
class DesignElement:
    id: str
    title: str
    kind: str  # adr | c4 | section | document
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
    weak: bool = False  # a plain list item: yields to a heading/checkbox definition, never a duplicate
    parallel: bool = False  # Spec Kit [P]
    story: str | None = None  # Spec Kit [US1]
    optional: bool = False  # Kiro "- [ ]*"


@dataclass
class RowLink:
    """A traceability-table row: the ID in its first cell and the IDs it maps to."""

    source: str
    line: int
    targets: list[str]


@dataclass
class SpecDoc:
    """Everything one spec file defines and mentions."""

    path: str
    role: str  # requirements | design | tasks
    requirements: list[Requirement] = field(default_factory=list)
    design: list[DesignElement] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    malformed: list[Mention] = field(default_factory=list)  # heading tokens that look like IDs but are not
    layout: str = "custom"  # where it lives: musubi | kiro | speckit | custom
    feature: str | None = None
    forms: list[str] = field(default_factory=list)  # the forms recognised in it: musubi, kiro, speckit
    row_links: list[RowLink] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
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
            layout=d["layout"],
            feature=d["feature"],
            forms=d["forms"],
            row_links=[RowLink(**x) for x in d["row_links"]],
        )


def split_lines(text: str) -> list[str]:
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def clean(s: str) -> str:
    return s.replace("**", "").replace("__", "").replace("`", "").strip()


def lead_token(text: str) -> tuple[str, str]:
    """First token of a heading or item and the title after it (``REQ-A-001: Title``, ``[REQ-A-001] Title``)."""
    t = clean(text)
    m = re.match(r"\[?([^\s:\]\[]+)\]?(.*)$", t)
    if not m:
        return "", t
    return m.group(1).rstrip(".,;"), m.group(2).strip().lstrip(":-–—").strip()



def code_mask(lines: list[str]) -> list[bool]:
    mask, fenced = [], False
    for ln in lines:
        if FENCE.match(ln):
            fenced = not fenced
            mask.append(True)
        else:
            mask.append(fenced)
    return mask


def section_end(headings: list[tuple[int, int, str]], k: int, n_lines: int) -> int:
    level = headings[k][1]
    for j in range(k + 1, len(headings)):
        if headings[j][1] <= level:
            return headings[j][0]
    return n_lines


@dataclass
class Ctx:
    """One file being parsed: its lines, headings, the feature scope of its local IDs, the forms to read."""

    ids: IdPatterns
    lines: list[str]
    in_code: list[bool]
    headings: list[tuple[int, int, str]]
    scope: str  # local IDs become "<scope>:<local>"
    kiro: bool  # read Kiro numbers ("Requirements 2.3")
    speckit: bool  # read Spec Kit local IDs (FR-001, SC-001)
    consumed: set[int] = field(default_factory=set)  # table rows read as links, ignore-marked lines
    forms: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.consumed.update(i for i, ln in enumerate(self.lines) if K.IGNORE_MARK in ln)

    def scoped(self, local: str) -> str:
        return f"{self.scope}:{local}"

    def line_mentions(self, i: int, carry: bool) -> tuple[list[Mention], bool]:
        """Every ID on line ``i``; ``carry``: the line before ended a Kiro citation list with a comma."""
        ln = self.lines[i]
        out = [Mention(tok, i + 1) for _p, tok in self.ids.find(ln)]
        if self.speckit and ("FR-" in ln or "SC-" in ln):
            for m in K.SPECKIT_LOCAL.finditer(ln):
                if not self.ids.kind_of(m.group(1)):
                    out.append(Mention(self.scoped(m.group(1)), i + 1))
        more = False
        if self.kiro:
            nums = K.kiro_citations(ln)
            if carry:
                cm = K.CONTINUED.match(ln)
                if cm:
                    nums = K.expand_numbers(cm.group(1)) + nums
            for n in nums:
                out.append(Mention(self.scoped(K.kiro_target(n)), i + 1, via=self.scoped(n) if "." in n else ""))
            more = bool(nums) and ln.rstrip(" _*").endswith(",")
        return out, more

    def mentions(self, start: int, end: int, own: str) -> list[Mention]:
        out: list[Mention] = []
        carry = False
        for i in range(start, end):
            if self.in_code[i] or i in self.consumed:
                carry = False
                continue
            found, carry = self.line_mentions(i, carry)
            out += [m for m in found if m.id != own]
        return out

    def table_rows(self, doc: SpecDoc) -> None:
        """Rows whose first cell is an ID map it to the IDs of the other cells: links, not mentions."""
        ids = self.ids
        for i, ln in enumerate(self.lines):
            s = ln.strip()
            if self.in_code[i] or not s.startswith("|") or i in self.consumed:
                continue
            cells = [c.strip() for c in s.strip("|").split("|")]
            if all(_TABLE_RULE.match(c) for c in cells if c):
                continue
            tok, _t = lead_token(cells[0])
            kind = ids.kind_of(tok)
            if kind is None:
                continue
            found = [t for _p, t in ids.find(" | ".join(cells[1:]))]
            want = ("design", "task") if kind == "requirement" else ("requirement",)
            targets = list(dict.fromkeys(t for t in found if ids.kind_of(t) in want and t != tok))
            if targets:
                doc.row_links.append(RowLink(tok, i + 1, targets))
                self.consumed.add(i)


def own_id(ctx: Ctx, start: int, end: int, kind: str) -> str | None:
    """The ID a ``**ID**: TASK-...`` line gives a section whose heading has none (``### Task 1.1`` + ID line)."""
    for j in range(start + 1, min(end, start + 8)):
        if ctx.in_code[j] or HEADING.match(ctx.lines[j]):
            break
        lab = K.BOLD_LABEL.match(ctx.lines[j])
        if lab and lab.group(1).strip().lower() == "id":
            tok, _t = lead_token(lab.group(2))
            if ctx.ids.kind_of(tok) == kind:
                return tok
    return None


def parent_title(headings: list[tuple[int, int, str]], k: int) -> str:
    """The text of the nearest enclosing heading (the title of a bare-ID heading)."""
    level = headings[k][1]
    for j in range(k - 1, -1, -1):
        if headings[j][1] < level:
            return clean(headings[j][2])
    return ""
