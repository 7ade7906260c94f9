"""The trace matrix: requirement → design / tasks / code / tests, coverage, gaps, impact.

Links come from *sources*: ``spec`` (a design element or task citing the
requirement), ``scan`` (an ID in code or a test), ``manual`` (accepted by a
person, from links.yml) and, later, ``suggested`` (code search).  Each link has
a *state*: ``active`` (found in the repo), ``accepted``, ``suggested``,
``rejected`` or ``suspect`` (the requirement's text changed since its last
review).  Only active, accepted and suspect links count toward coverage.

Coverage:
- *shallow*: the requirement has a direct link of each kind (the ID itself is cited).
- *deep*: design as shallow; tasks: it has at least one task; code / tests:
  it has tasks and every one of them is cited by code / by a test.  Code that
  cites a task or an ADR also appears under the requirements that task or ADR
  serves (``via``), but only direct citations count as shallow coverage.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from core.trace import forms as K
from core.trace.lexer import COUNTED
from core.trace.links import LinksFile, fingerprint
from core.trace.scanner import ScanResult
from core.trace.specs import DesignElement, Mention, Requirement, Task

COLUMNS = ("design", "tasks", "code", "tests")
_KIND_COLUMN = {"design": "design", "task": "tasks", "code": "code", "test": "tests"}
COUNTING_STATES = ("active", "accepted", "suspect")


def grade(percent: float) -> str:
    for g, floor in (("A", 90), ("B", 80), ("C", 70), ("D", 60)):
        if percent >= floor:
            return g
    return "F"


@dataclass
class Link:
    """One edge from a requirement to a downstream artefact or location."""

    kind: str  # design | task | code | test
    target: str  # artefact ID, or the file path for code and tests
    path: str
    line: int
    source: str  # spec | scan | manual | suggested
    state: str = "active"
    via: str = ""  # the ID actually cited (the requirement, or a task / ADR serving it)
    title: str = ""
    status: str = ""
    context: str = ""  # for scanned links: comment | docstring | test-name | test-string | text

    def counts(self) -> bool:
        return self.state in COUNTING_STATES


@dataclass
class Row:
    req: Requirement
    fingerprint: str
    reviewed: bool = False
    suspect: bool = False
    links: dict[str, list[Link]] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    shallow: dict[str, bool] = field(default_factory=dict)
    deep: dict[str, bool] = field(default_factory=dict)
    external: list[dict[str, Any]] = field(default_factory=list)  # synced items elsewhere (links.yml "external")

    def to_json(self) -> dict[str, Any]:
        r = self.req
        return {
            "id": r.id,
            "title": r.title,
            "path": r.path,
            "line": r.line,
            "priority": r.priority,
            "status": r.status,
            "feature": r.feature,
            "form": r.form,
            "statement": r.statement,
            "statement_kind": r.statement_kind,
            "criteria": r.criteria,
            "criteria_ids": r.criteria_ids,
            "fingerprint": self.fingerprint,
            "reviewed": self.reviewed,
            "suspect": self.suspect,
            "links": {c: [asdict(lk) for lk in self.links[c]] for c in COLUMNS},
            "shallow": self.shallow,
            "deep": self.deep,
            "external": self.external,
        }


@dataclass
class Trace:
    """Everything derived from one scan plus links.yml."""

    scan: ScanResult
    rows: dict[str, Row]
    design: dict[str, DesignElement]
    tasks: dict[str, Task]
    duplicates: list[dict[str, Any]]
    dangling: list[dict[str, Any]]
    orphans: list[dict[str, Any]]
    rejected: list[Link]
    ambiguous: list[dict[str, Any]] = field(default_factory=list)  # bare citations more than one feature could mean

    # -- derived views ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        n = len(self.rows)

        def block(attr: str) -> dict[str, Any]:
            cols = {}
            total = 0
            for c in COLUMNS:
                k = sum(1 for r in self.rows.values() if getattr(r, attr)[c])
                total += k
                cols[c] = {"covered": k, "percent": round(100.0 * k / n, 1) if n else 0.0}
            overall = round(100.0 * total / (4 * n), 1) if n else 0.0
            return {"columns": cols, "overall": overall, "grade": grade(overall)}

        shallow, deep = block("shallow"), block("deep")
        return {
            "requirements": n,
            **shallow,
            "deep": {**deep, "complete": sum(1 for r in self.rows.values() if all(r.deep.values()))},
            "suspect": sum(1 for r in self.rows.values() if r.suspect),
            "unreviewed": sum(1 for r in self.rows.values() if not r.reviewed),
            "design_elements": len(self.design),
            "tasks": len(self.tasks),
            "dangling": len(self.dangling),
            "ambiguous": len(self.ambiguous),
            "orphans": len(self.orphans),
        }

    def gaps(self) -> dict[str, Any]:
        missing = [
            {"id": r.req.id, "title": r.req.title, "path": r.req.path, "line": r.req.line,
             "missing": [c for c in COLUMNS if not r.shallow[c]]}
            for r in self.rows.values()
            if not all(r.shallow.values())
        ]
        return {
            "requirements": missing, "orphans": self.orphans, "dangling": self.dangling, "duplicates": self.duplicates,
            "ambiguous": self.ambiguous, "dangling_by_folder": _grouped(self.dangling, True),
            "dangling_by_file": _grouped(self.dangling, False),
        }

    def impact(self, rid: str) -> dict[str, Any]:
        """Everything downstream of ``rid``: the set to revisit when it changes."""
        row = self.rows[rid]
        dependents = [
            {"id": r.req.id, "path": r.req.path, "line": m.line}
            for r in self.rows.values()
            for m in r.req.cites
            if m.id == rid
        ]
        items = [asdict(lk) for c in COLUMNS for lk in row.links[c] if lk.counts()]
        return {
            "id": rid,
            "title": row.req.title,
            "suspect": row.suspect,
            "reviewed": row.reviewed,
            "fingerprint": row.fingerprint,
            "design": [i for i in items if i["kind"] == "design"],
            "tasks": [i for i in items if i["kind"] == "task"],
            "code": [i for i in items if i["kind"] == "code"],
            "tests": [i for i in items if i["kind"] == "test"],
            "requirements": dependents,
            "files": sorted({i["path"] for i in items}),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.scan.root,
            "scan": self.scan.stats(),
            "summary": self.summary(),
            "requirements": [r.to_json() for r in self.rows.values()],
            "gaps": self.gaps(),
            "diagnosis": self.scan.diagnosis(),
        }


def _grouped(dangling: list[dict[str, Any]], by_folder: bool) -> list[dict[str, Any]]:
    """Dangling references counted per file (or per folder, two levels deep): where the noise is."""
    counts: Counter[str] = Counter()
    ids: dict[str, list[str]] = {}
    for d in dangling:
        key = d["path"]
        if by_folder:
            key = "/".join(key.split("/")[:-1][:2]) or "."
        counts[key] += 1
        seen = ids.setdefault(key, [])
        if d["id"] not in seen and len(seen) < 5:
            seen.append(d["id"])
    return [{"path": k, "count": n, "ids": ids[k]} for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def natural_key(rid: str) -> tuple[Any, ...]:
    """Global IDs as text; feature-scoped ones by number (``billing:2`` before ``billing:10``)."""
    if ":" not in rid:
        return (0, rid, [])
    return (1, "", [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", rid)])


class _Defs:
    """First definitions of every ID; a later strong definition of a *weak* one (a summary line) replaces it."""

    def __init__(self) -> None:
        self.first_at: dict[str, Requirement | DesignElement | Task] = {}
        self.duplicates: list[dict[str, Any]] = []

    def add(self, art: Requirement | DesignElement | Task) -> bool:
        prev = self.first_at.get(art.id)
        if prev is None or (getattr(prev, "weak", False) and not getattr(art, "weak", False)):
            self.first_at[art.id] = art
            return True
        if not getattr(art, "weak", False) and not getattr(prev, "weak", False):
            self.duplicates.append({"id": art.id, "path": art.path, "line": art.line, "first": f"{prev.path}:{prev.line}"})
        return False


class _Resolver:
    """Which feature a bare citation in code means ("Requirements 2.3", "FR-001")."""

    def __init__(self, rows: dict[str, Row], active: str | None) -> None:
        self.rows, self.active = rows, active
        self.features = sorted({r.req.feature for r in rows.values() if r.req.feature})
        self.criteria = {c for r in rows.values() for c in r.req.criteria_ids}

    def feature_named(self, hint: str) -> str | None:
        if hint in self.features:
            return hint
        hits = [f for f in self.features if K.strip_feature_number(f) == K.strip_feature_number(hint)]
        return hits[0] if len(hits) == 1 else None

    def resolve(self, tok: str, path: str) -> tuple[str | None, str, list[str]]:
        """(requirement ID or None, the ID cited, candidate features when ambiguous)."""
        hint, local = tok[1:].split(":", 1)
        target = K.kiro_target(local) if local[:1].isdigit() else local
        cands = [f for f in self.features if f"{f}:{target}" in self.rows]
        chosen: str | None = None
        if hint:
            named = self.feature_named(hint)
            if named is not None:
                return (f"{named}:{target}" if named in cands else None), f"{named}:{local}", []
        if self.active in cands:
            chosen = self.active
        elif len(cands) == 1:
            chosen = cands[0]
        elif cands:
            low = path.lower().replace("_", "-")
            in_path = [f for f in cands if K.strip_feature_number(f).lower() in low]
            if len(in_path) == 1:
                chosen = in_path[0]
            else:
                return None, local, cands
        if chosen is None:
            return None, local, []
        return f"{chosen}:{target}", f"{chosen}:{local}", []


def build(scan: ScanResult, links: LinksFile | None = None) -> Trace:
    """Join a scan and links.yml into the matrix."""
    ids = scan.config.ids
    rows: dict[str, Row] = {}
    design: dict[str, DesignElement] = {}
    tasks: dict[str, Task] = {}
    defs = _Defs()
    for doc in scan.specs:
        for r in doc.requirements:
            if defs.add(r):
                rows[r.id] = Row(r, fingerprint(r))
        for e in doc.design:
            if defs.add(e):
                design[e.id] = e
        for t in doc.tasks:
            if defs.add(t):
                tasks[t.id] = t
    duplicates = defs.duplicates
    rows = dict(sorted(rows.items(), key=lambda kv: natural_key(kv[0])))
    resolver = _Resolver(rows, scan.active_feature)
    known = set(rows) | set(design) | set(tasks) | resolver.criteria
    dangling: list[dict[str, Any]] = []
    ambiguous: list[dict[str, Any]] = []
    orphans: list[dict[str, Any]] = []
    serves: dict[str, list[str]] = {}  # task / design ID -> requirement IDs it cites
    extra: dict[str, list[Mention]] = {}  # traceability-table rows, by the element they belong to

    for doc in scan.specs:
        for rl in doc.row_links:
            if ids.kind_of(rl.source) == "requirement":
                for tid in rl.targets:
                    extra.setdefault(tid, []).append(Mention(rl.source, rl.line, path=doc.path))
                    if tid not in known:
                        dangling.append({"id": tid, "path": doc.path, "line": rl.line, "from": "matrix", "in": rl.source})
            elif rl.source in known:
                extra.setdefault(rl.source, []).extend(Mention(t, rl.line, path=doc.path) for t in rl.targets)
            else:
                dangling.append({"id": rl.source, "path": doc.path, "line": rl.line, "from": "matrix", "in": doc.path})

    def cite(kind: str, el: DesignElement | Task) -> None:
        reqs = []
        for m in el.cites + extra.get(el.id, []):
            where = m.path or el.path
            if m.id not in known or (m.via and m.via not in known):
                dangling.append({"id": m.via or m.id, "path": where, "line": m.line,
                                 "from": kind, "in": el.id})
            elif m.id in rows and m.id not in reqs:
                reqs.append(m.id)
                rows[m.id].links[_KIND_COLUMN[kind]].append(
                    Link(kind, el.id, where, m.line, "spec", via=m.via or m.id, title=el.title,
                         status=getattr(el, "status", "") or (getattr(el, "level", "") or ""))
                )
        serves[el.id] = reqs
        if not reqs:
            orphans.append({"kind": kind, "id": el.id, "title": el.title, "path": el.path, "line": el.line})

    for e in design.values():
        cite("design", e)
    for t in tasks.values():
        cite("task", t)
    for row in rows.values():
        for m in row.req.cites:
            if m.id not in known or (m.via and m.via not in known):
                dangling.append({"id": m.via or m.id, "path": row.req.path, "line": m.line, "from": "requirement", "in": row.req.id})

    cited_by: dict[str, dict[str, bool]] = {}  # task ID -> {"code": bool, "test": bool}
    for kind, files in (("code", scan.code), ("test", scan.tests)):
        for path, hits in files.items():
            for tok, line, ctx in hits:
                if ctx not in COUNTED:
                    continue
                via = tok
                if tok.startswith("@"):
                    rid, via, cands = resolver.resolve(tok, path)
                    if rid is None:
                        entry = {"id": via, "path": path, "line": line, "from": kind, "in": path}
                        (ambiguous if cands else dangling).append({**entry, "candidates": cands} if cands else entry)
                        continue
                    if via != rid and via not in known:
                        dangling.append({"id": via, "path": path, "line": line, "from": kind, "in": path})
                        continue
                    tok = rid
                if tok not in known:
                    if ids.kind_of(tok):
                        dangling.append({"id": tok, "path": path, "line": line, "from": kind, "in": path})
                    continue
                if tok in rows:
                    rows[tok].links[_KIND_COLUMN[kind]].append(Link(kind, path, path, line, "scan", via=via, context=ctx))
                    continue
                cited_by.setdefault(tok, {"code": False, "test": False})[kind] = True
                for rid in serves.get(tok, ()):
                    rows[rid].links[_KIND_COLUMN[kind]].append(Link(kind, path, path, line, "scan", via=tok, context=ctx))

    rejected: list[Link] = []
    lf = links or LinksFile(path=None)  # type: ignore[arg-type]
    for sl in lf.links:
        if sl.requirement not in rows:
            dangling.append({"id": sl.requirement, "path": "storage/traceability/links.yml", "line": 0, "from": "links.yml", "in": sl.target})
            continue
        lk = Link(sl.kind, sl.target, sl.target if sl.kind in ("code", "test") else "", sl.line or 0, sl.source,
                  state=sl.state, via=sl.requirement)
        if sl.kind in ("design", "task"):
            el = design.get(sl.target) or tasks.get(sl.target)
            if el is not None:
                lk.path, lk.line, lk.title = el.path, sl.line or el.line, el.title
        if sl.state == "rejected":
            rejected.append(lk)
        else:
            rows[sl.requirement].links[_KIND_COLUMN[sl.kind]].append(lk)

    task_of: dict[str, list[str]] = {}
    for tid, reqs in serves.items():
        if tid in tasks:
            for rid in reqs:
                task_of.setdefault(rid, []).append(tid)
    for rid, row in rows.items():
        review = lf.reviews.get(rid)
        row.reviewed = review is not None
        row.suspect = review is not None and review.get("fingerprint") != row.fingerprint
        if row.suspect:
            for c in COLUMNS:
                for lk in row.links[c]:
                    if lk.state in ("active", "accepted"):
                        lk.state = "suspect"
        for c in COLUMNS:
            row.links[c].sort(key=lambda lk: (lk.path, lk.line, lk.target))
            # Direct: the requirement itself is cited (or one of its Kiro criteria, "billing:2.3"), or a person said so.
            row.shallow[c] = any(lk.counts() and (lk.via == rid or lk.via.startswith(rid + ".")
                                                  or lk.source in ("manual", "suggested")) for lk in row.links[c])
        my_tasks = task_of.get(rid, [])
        row.deep = {
            "design": row.shallow["design"],
            "tasks": bool(my_tasks),
            "code": bool(my_tasks) and all(cited_by.get(t, {}).get("code") for t in my_tasks),
            "tests": bool(my_tasks) and all(cited_by.get(t, {}).get("test") for t in my_tasks),
        }
    _external(rows, lf)
    dangling.sort(key=lambda d: (d["path"], d["line"], d["id"]))
    ambiguous.sort(key=lambda d: (d["path"], d["line"], d["id"]))
    orphans.sort(key=lambda d: (d["path"], d["line"]))
    return Trace(scan, rows, design, tasks, duplicates, dangling, orphans, rejected, ambiguous)


def _external(rows: dict[str, Row], lf: LinksFile) -> None:
    """Status read back by ``musubi sync``: each requirement's own items and those of the tasks serving it."""
    by: dict[str, list[dict[str, Any]]] = {}
    for x in lf.external:
        by.setdefault(x.artefact, []).append({k: v for k, v in x.to_yaml().items() if k not in ("pushed", "remote")})
    if not by:
        return
    for rid, row in rows.items():
        row.external = list(by.get(rid, []))
        for lk in row.links["tasks"]:
            if lk.kind == "task":
                row.external += [x for x in by.get(lk.target, []) if x not in row.external]
