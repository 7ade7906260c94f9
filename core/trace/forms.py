"""The written forms of the spec layouts: labels, statuses, Kiro and Spec Kit local IDs, citations.

Kiro numbers requirements per feature (``### Requirement 2``, criteria ``2.3``)
and Spec Kit restarts ``FR-001`` / ``T001`` in every feature folder, so those
IDs are *local*: the artefact ID is ``<feature>:<local>`` (``billing:2``,
``001-photo-albums:FR-001``).  Code cites them bare ("Requirements 2.3",
"FR-001"); :func:`kiro_citations` finds those and the matrix resolves them to a
feature.
"""

from __future__ import annotations

import re

# -- labels ------------------------------------------------------------------------------

# ``**Label**: rest``, ``**Label:** rest``, ``- **Label**: rest``, ``__Label__: rest``.
BOLD_LABEL = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)([^*_:\n]{1,40}?)\s*(?::\s*(?:\*\*|__)|(?:\*\*|__)\s*:)\s*(.*)$"
)
# Labels whose text (or the paragraph / fenced block after them) is the statement, best first.
STATEMENT_LABELS = {
    "ears statement": 0, "ears": 0, "ears requirement": 0, "ears format": 0, "ears notation": 0,
    "statement": 0, "requirement statement": 0, "requirement": 1, "description": 1, "text": 1,
    "specification": 1, "user story": 3, "story": 3,
}
PLAIN_STATEMENT = 2  # a plain first paragraph ranks between a description and a user story
STATUS_LABELS = ("status", "state", "implementation status")
AC = re.compile(r"acceptance\s+(?:criteria|scenarios)", re.I)

# -- statuses -------------------------------------------------------------------------------

STATUS_WORDS = {
    "todo": "todo", "to do": "todo", "pending": "todo", "open": "todo", "not started": "todo", "planned": "todo",
    "in progress": "in-progress", "in-progress": "in-progress", "wip": "in-progress", "doing": "in-progress",
    "partial": "in-progress", "partially implemented": "in-progress",
    "done": "done", "complete": "done", "completed": "done", "implemented": "done", "closed": "done",
    "blocked": "blocked",
}
_SYMBOL_STATUS = {"✅": "done", "✔": "done", "☑": "done", "❌": "todo", "⚠": "in-progress", "🚧": "in-progress"}


def normalize_status(raw: str) -> str:
    """``in progress`` → ``in-progress``, ``✅ Implemented`` → ``done``, ``❌ Not implemented`` → ``todo``."""
    s = raw.strip().strip("*_`").strip()
    words = re.sub(r"^[^0-9A-Za-z]+", "", s).strip().lower()
    words = re.sub(r"\s*\(.*$", "", words)  # "Already implemented (line 196)"
    if words in STATUS_WORDS:
        return STATUS_WORDS[words]
    if words:
        if re.search(r"\bnot\b|\bmissing\b|\bunimplemented\b", words):
            return "todo"
        if "partial" in words:
            return "in-progress"
        known = (("implemented", "done"), ("complete", "done"), ("done", "done"), ("progress", "in-progress"))
        for word, status in known:
            if word in words:
                return status
        return words.split()[0]
    return next((v for k, v in _SYMBOL_STATUS.items() if k in s), "")


# -- local IDs ------------------------------------------------------------------------------

SPECKIT_LOCAL = re.compile(r"(?<![A-Za-z0-9_\-])((?:FR|SC|NFR)-\d{3,})(?![A-Za-z0-9_]|-[A-Za-z0-9])")
SPECKIT_LOCAL_BYTES = re.compile(SPECKIT_LOCAL.pattern.encode())
SPECKIT_DEF = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?((?:FR|SC|NFR)-\d{3,})(?:\*\*|__)?\s*[:.)\-–—]?\s*(?:\*\*|__)?\s*(.*)$"
)
SPECKIT_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX])\]\s+(T\d{3,})\b[.:]?\s*(.*)$")
KIRO_REQ_HEADING = re.compile(r"^Requirement\s+(\d+)(?![\d.]*\d)\s*[:.\-–—]?\s*(.*)$", re.I)
KIRO_TASK = re.compile(r"^(\s*)[-*+]\s+\[([ xX~/-])\](\*?)\s+(\d+(?:\.\d+)*)\.?\s+(.*)$")
NEEDS_CLARIFICATION = re.compile(r"\[NEEDS CLARIFICATION", re.I)

# "Requirements 2.3", "Req 2.3", "Requirement 2", "_Requirements: 1.1, 2.3_", "Requirements 4.1–4.5".
_NUM = r"\d+(?:\.\d+)?"
_DASH = r"(?:-|–|—|to)"  # an alternation, not a class: the bytes form must match whole UTF-8 dashes
_ITEM = rf"{_NUM}(?:\s*{_DASH}\s*{_NUM})?"
_LIST = rf"{_ITEM}(?:\s*(?:,|&|\band\b)\s*{_ITEM})*"
KIRO_CITE = re.compile(
    rf"(?<![A-Za-z0-9-])(?:Requirements?|Reqs?|REQ)\.?\s*[:#]?\s*(?:\*\*|__|_)?\s*({_LIST})(?![\d.]*\d)"
)
KIRO_CITE_BYTES = re.compile(KIRO_CITE.pattern.encode())
CONTINUED = re.compile(rf"^\s*({_LIST})")
_ITEM_RX = re.compile(rf"({_NUM})(?:\s*{_DASH}\s*({_NUM}))?")
FEATURE_MARK = re.compile(r"Feature\s*:\s*(?:\*\*|__)?\s*([A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9])")
FEATURE_MARK_BYTES = re.compile(FEATURE_MARK.pattern.encode())
MAX_RANGE = 200


def expand_numbers(listing: str) -> list[str]:
    """``"1.1–1.3, 2"`` → ``["1.1", "1.2", "1.3", "2"]`` (a range stays within one requirement)."""
    out: list[str] = []
    for m in _ITEM_RX.finditer(listing):
        a, b = m.group(1), m.group(2)
        if not b:
            out.append(a)
            continue
        pa, pb = a.split("."), b.split(".")
        if len(pa) == len(pb) == 2 and pa[0] == pb[0] and 0 <= int(pb[1]) - int(pa[1]) <= MAX_RANGE:
            out += [f"{pa[0]}.{k}" for k in range(int(pa[1]), int(pb[1]) + 1)]
        elif len(pa) == len(pb) == 1 and 0 <= int(b) - int(a) <= MAX_RANGE:
            out += [str(k) for k in range(int(a), int(b) + 1)]
        else:
            out += [a, b]
    return out


def kiro_citations(line: str) -> list[str]:
    """Numbers cited Kiro-style on one line ("Requirements 1.1, 2.3" → ["1.1", "2.3"])."""
    out: list[str] = []
    for m in KIRO_CITE.finditer(line):
        out += expand_numbers(m.group(1))
    return out


def kiro_target(local: str) -> str:
    """The requirement a Kiro number cites: ``2.3`` → ``2`` (criterion 3 of requirement 2)."""
    return local.split(".", 1)[0]


def strip_feature_number(feature: str) -> str:
    """``001-photo-albums`` → ``photo-albums`` (how features are named in prose and paths)."""
    return re.sub(r"^\d+[-_]", "", feature)

# A line holding this marker is not traced: its IDs are neither links nor dangling references.
IGNORE_MARK = "musubi-trace: ignore"
