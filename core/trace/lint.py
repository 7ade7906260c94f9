"""EARS lint of requirements (``musubi spec lint``).

The five EARS patterns, with ``the <system> SHALL <response>`` as the core:

=============  ==============================================================
ubiquitous     The <system> SHALL <response>
event-driven   WHEN <trigger>[,] [THEN] the <system> SHALL <response>
state-driven   WHILE <state>, the <system> SHALL <response>
unwanted       IF <condition>[,] THEN the <system> SHALL <response>
optional       WHERE <feature>, the <system> SHALL <response>
=============  ==============================================================

Keywords may combine (``WHILE ..., WHEN ...``).  Each finding carries the file,
line, rule id, severity and a fix hint.  Words are matched as whole words:
"cancel" is not the ambiguous "can", "mayor" is not "may".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from core.trace import forms as K
from core.trace.ids import IdPatterns
from core.trace.specs import Mention, Requirement, SpecDoc

AMBIGUOUS = ("should", "could", "might", "may", "will", "can", "must")
VAGUE = (
    "user-friendly", "user friendly", "easy", "easily", "simple", "simply", "fast", "quickly", "quick",
    "efficient", "efficiently", "appropriate", "adequate", "sufficient", "reasonable", "robust", "flexible",
    "intuitive", "seamless", "seamlessly", "as soon as possible", "as appropriate", "if possible",
    "etc", "and/or", "some", "several", "many", "various", "normally", "usually", "typically", "approximately",
    "state-of-the-art", "best", "optimal", "minimal", "maximal",
)
MIN_WORDS, MAX_WORDS = 5, 50

RULES: dict[str, tuple[str, str]] = {
    "ears.missing-statement": ("error", "write the EARS statement as the first paragraph under the heading"),
    "ears.no-shall": ("error", "state the obligation with SHALL: 'the <system> SHALL <response>'"),
    "ears.broken-pattern": ("error", "follow one of the five EARS patterns (see docs/trace.md)"),
    "ears.ambiguous-word": ("warning", "replace it with SHALL for an obligation, or remove it"),
    "ears.vague-term": ("warning", "replace it with a measurable value (a number, a unit, a named standard)"),
    "ears.too-short": ("warning", f"say who does what: at least {MIN_WORDS} words"),
    "ears.too-long": ("warning", f"split it into several requirements of at most {MAX_WORDS} words"),
    "ears.multiple-shall": ("warning", "one requirement, one SHALL: split it"),
    "req.no-acceptance-criteria": ("warning", "add an 'Acceptance Criteria' list of testable bullets"),
    "id.duplicate": ("error", "give each artefact its own ID; renumber the later one"),
    "id.malformed": ("error", "use the project's ID pattern, e.g. REQ-AUTH-001, TASK-AUTH-001, ADR-001"),
    "ref.unknown-id": ("error", "fix the ID or define the artefact it refers to"),
    "spec.no-obligation": ("error", "state the obligation with MUST (or SHALL): 'System MUST <capability>'"),
    "spec.needs-clarification": ("warning", "answer the open question and replace the [NEEDS CLARIFICATION] marker"),
    "spec.nothing-recognised": ("error", "write requirements in a form the tracer reads (see docs/trace.md, 'Where specs are found')"),
}

_SHALL = re.compile(r"\bshall\b", re.I)
_LEAD = re.compile(r"^\s*(when|while|if|where)\b", re.I)
_THEN = re.compile(r"\bthen\b", re.I)
_UPPER_THE = re.compile(r"\bTHE\b")  # the layouts' guides write "WHILE <state> THE <system> SHALL" without a comma
_MUST = re.compile(r"\b(?:MUST|SHALL)\b")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’/-]*")


def _word_rx(words: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words: not glued to letters, digits, apostrophes or hyphens ("cancel", "can't", "long-term").
    alt = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w'’-])(?:{alt})(?![\w'’-]|/\w)", re.I)


_AMBIG_RX = _word_rx(AMBIGUOUS)
_AMBIG_SPECKIT_RX = _word_rx(tuple(w for w in AMBIGUOUS if w != "must"))  # MUST is Spec Kit's obligation word
_VAGUE_RX = _word_rx(VAGUE)


@dataclass
class Finding:
    rule: str
    severity: str
    path: str
    line: int
    message: str
    hint: str
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _f(rule: str, path: str, line: int, message: str, rid: str = "") -> Finding:
    sev, hint = RULES[rule]
    return Finding(rule, sev, path, line, message, hint, rid)


def ears_pattern(statement: str) -> str | None:
    """The EARS pattern a statement follows, or None when it follows none."""
    s = statement.strip()
    if not _SHALL.search(s):
        return None
    lead = _LEAD.match(s)
    if not lead:
        return "ubiquitous"
    return {"when": "event-driven", "while": "state-driven", "if": "unwanted", "where": "optional"}[lead.group(1).lower()]


def _ears(s: str, path: str, line: int, who: str, rid: str) -> list[Finding]:
    """EARS findings on one text (a statement or an acceptance criterion)."""
    out: list[Finding] = []
    shalls = list(_SHALL.finditer(s))
    if not shalls:
        out.append(_f("ears.no-shall", path, line, f"{who}: the statement has no SHALL.", rid))
    else:
        first = shalls[0]
        before, after = s[: first.start()], s[first.end() :]
        lead = _LEAD.match(s)
        problem = None
        if not re.search(r"[A-Za-z]", after):
            problem = "nothing follows SHALL: say what the system does"
        elif lead:
            kw = lead.group(1).upper()
            clause = before[lead.end() :]
            cond = re.split(r",|\bthen\b", clause, maxsplit=1, flags=re.I)[0]
            if len(cond.split()) < 1:
                problem = f"{kw} needs a {'trigger' if kw == 'WHEN' else 'condition'} before the response"
            elif kw == "IF" and not _THEN.search(before):
                problem = "IF (unwanted behaviour) needs THEN before the response: 'IF <condition>, THEN the <system> SHALL ...'"
            elif "," not in clause and not _THEN.search(clause) and not _UPPER_THE.search(clause):
                problem = f"separate the {kw} clause from the response with a comma or THEN"
            elif len(re.split(r",|\bthen\b", clause, flags=re.I)[-1].split()) < 1:
                problem = "name the system before SHALL: '..., the <system> SHALL ...'"
        else:
            if _THEN.search(before):
                problem = "THEN without WHEN or IF"
            elif not before.strip():
                problem = "name the system before SHALL: 'The <system> SHALL ...'"
        if problem:
            out.append(_f("ears.broken-pattern", path, line, f"{who}: {problem}.", rid))
        if len(shalls) > 1:
            out.append(_f("ears.multiple-shall", path, line, f"{who}: {len(shalls)} SHALLs in one statement.", rid))
    out += _words(s, path, line, who, rid, _AMBIG_RX)
    return out


def _words(s: str, path: str, line: int, who: str, rid: str, ambiguous: re.Pattern[str] | None) -> list[Finding]:
    out: list[Finding] = []
    if ambiguous is not None:
        for m in ambiguous.finditer(s):
            out.append(_f("ears.ambiguous-word", path, line, f"{who}: ambiguous word '{m.group(0)}'.", rid))
    for m in _VAGUE_RX.finditer(s):
        out.append(_f("ears.vague-term", path, line, f"{who}: vague term '{m.group(0)}'.", rid))
    n = len(_WORD.findall(s))
    if n < MIN_WORDS:
        out.append(_f("ears.too-short", path, line, f"{who}: {n} words (fewer than {MIN_WORDS}).", rid))
    elif n > MAX_WORDS:
        out.append(_f("ears.too-long", path, line, f"{who}: {n} words (more than {MAX_WORDS}).", rid))
    return out


def _looks_ears(text: str) -> bool:
    return bool(_SHALL.search(text))


def lint_statement(req: Requirement) -> list[Finding]:
    """Findings on one requirement: its statement, and its acceptance criteria where they carry the EARS.

    Kiro puts the EARS in the numbered criteria (the statement is a user story), so
    every Kiro criterion is linted; elsewhere a criterion is linted when it states a
    SHALL (a checklist item such as "Export to JSON" is not EARS).  Spec Kit requirements are
    "System MUST ..." sentences: checked for an obligation, vague terms and open
    [NEEDS CLARIFICATION] markers instead.
    """
    out: list[Finding] = []
    path, line, rid = req.path, req.statement_line or req.line, req.id
    s = req.statement.strip()
    if req.statement_kind == "speckit":
        local = rid.rsplit(":", 1)[-1]
        if local.startswith("FR") and s and not _MUST.search(s):
            out.append(_f("spec.no-obligation", path, line, f"{rid}: no MUST (or SHALL) says what is required.", rid))
        if K.NEEDS_CLARIFICATION.search(s):
            out.append(_f("spec.needs-clarification", path, line, f"{rid} is marked NEEDS CLARIFICATION.", rid))
        if not s:
            out.append(_f("ears.missing-statement", path, req.line, f"{rid} has no text.", rid))
        else:
            out += _words(s, path, line, rid, rid, _AMBIG_SPECKIT_RX if local.startswith("FR") else None)
        return out
    if req.statement_kind == "story":
        if not req.criteria:
            out.append(_f("req.no-acceptance-criteria", path, req.line, f"{rid} has no acceptance criteria.", rid))
    elif not s:
        out.append(_f("ears.missing-statement", path, req.line, f"{rid} has no statement.", rid))
        return out
    else:
        out += _ears(s, path, line, rid, rid)
        if not req.criteria:
            out.append(_f("req.no-acceptance-criteria", path, req.line, f"{rid} has no acceptance criteria.", rid))
    for n, text in enumerate(req.criteria):
        if req.form != "kiro" and not _looks_ears(text):
            continue
        cline = req.criteria_lines[n] if n < len(req.criteria_lines) else req.criteria_line or req.line
        who = req.criteria_ids[n] if n < len(req.criteria_ids) else f"{rid} criterion {n + 1}"
        out += _ears(text, path, cline, who, rid)
    return out


def lint_specs(specs: list[SpecDoc], ids: IdPatterns) -> list[Finding]:
    """All findings over a repository's spec files, sorted by file and line."""
    out: list[Finding] = []
    seen: dict[str, tuple[str, int]] = {}
    defined: set[str] = set()
    for doc in specs:
        defined.update(r.id for r in doc.requirements)
        defined.update(c for r in doc.requirements for c in r.criteria_ids)
        defined.update(e.id for e in doc.design)
        defined.update(t.id for t in doc.tasks)
    for doc in specs:
        for bad in doc.malformed:
            kind = ids.malformed_prefix(bad.id) or "artefact"
            out.append(_f("id.malformed", doc.path, bad.line, f"{bad.id!r} is not a valid {kind} ID.", bad.id))
        arts: list[tuple[str, int, list[Mention]]] = [(r.id, r.line, r.cites) for r in doc.requirements]
        arts += [(e.id, e.line, e.cites) for e in doc.design if e.kind != "document"]
        arts += [(t.id, t.line, t.cites) for t in doc.tasks]
        for aid, line, _c in arts:
            if aid in seen:
                p, ln = seen[aid]
                out.append(_f("id.duplicate", doc.path, line, f"{aid} is already defined at {p}:{ln}.", aid))
            else:
                seen[aid] = (doc.path, line)
        cites = [m for _a, _l, c in arts for m in c] + [m for e in doc.design if e.kind == "document" for m in e.cites]
        for m in cites:
            if m.id not in defined or (m.via and m.via not in defined):
                cited = m.via or m.id
                out.append(_f("ref.unknown-id", doc.path, m.line, f"{cited} is referenced but defined nowhere.", cited))
        for r in doc.requirements:
            out.extend(lint_statement(r))
    out.sort(key=lambda f: (f.path, f.line, f.rule))
    return out


def lint_summary(findings: list[Finding]) -> dict[str, Any]:
    return {
        "errors": sum(1 for f in findings if f.severity == "error"),
        "warnings": sum(1 for f in findings if f.severity == "warning"),
        "findings": [f.to_json() for f in findings],
    }


def nothing_recognised(diagnosis: dict[str, Any]) -> Finding:
    """The error ``spec lint`` reports when spec files exist but no requirement was recognised."""
    path = diagnosis["spec_files"][0] if diagnosis["spec_files"] else "."
    sev, _hint = RULES["spec.nothing-recognised"]
    return Finding("spec.nothing-recognised", sev, path, 1, diagnosis["message"], diagnosis["hint"])
