"""Suggested trace links: for each requirement and task, the code and tests that read most like it (light).

:func:`suggest` asks a search function (the project's hybrid code search, or a fake in tests)
with the text of each requirement (title, statement, acceptance criteria) and of each task
(title, under every requirement it serves), keeps the code and test chunks scoring at least
``threshold``, and returns per requirement at most ``per_kind`` suggestions of each kind
(``code``, ``test``), one per file, best first.  Known links are never suggested again: a file
already linked to the requirement (found in the repo, or accepted) or rejected in links.yml (the
same file and line, or the whole file) is skipped.  Requirement and task IDs are removed from
the query: the point is to find code that does not cite them yet.

The threshold was chosen by measurement (benchmarks/bench_suggest.py; docs/trace.md
"Suggested links"), see :data:`THRESHOLD`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.trace.matrix import Link, Trace

#: search(query, k) -> hits best first, each with path, start_line, end_line, symbol, language, score.
SearchFn = Callable[[str, int], Sequence[Mapping[str, Any]]]

#: The fused-score floor (z-normalised dense + lexical, core/rag/fusion.py): the best mean F0.5 over
#: the three corpora of benchmarks/bench_suggest.py (the trace fixture bare and with its generated
#: file, and a subset of nahisaho/MUSUBI), with the real model (docs/search.md "Suggested links").
THRESHOLD = 1.25
PER_KIND = 3  # suggestions per requirement and kind
K = 20  # hits asked per query
NOT_CODE = frozenset({"markdown", "text"})  # prose and plain text are neither code nor tests

# What cites an artefact in the repo's own notation (REQ-AUTH-001, TASK_BILL_001, ADR-7, billing:2.3).
_IDS = re.compile(r"(?i)\b(?:REQ|TASK|ADR|FR|NFR|US|AC)[-_](?:[A-Z]+[-_])*\d+(?:\.\d+)*\b")


@dataclass(frozen=True)
class Suggestion:
    """One suggested link: ``requirement`` → ``path:line`` (``kind`` code or test), and the query that found it."""

    requirement: str
    kind: str  # code | test
    path: str
    line: int
    end_line: int
    symbol: str
    score: float
    via: str  # the requirement, or the task whose text found it

    def as_link(self) -> dict[str, Any]:
        return asdict(self)


def strip_ids(text: str) -> str:
    """``text`` without requirement/task IDs, whitespace collapsed."""
    return " ".join(re.sub(r"\(\s*[,;]?\s*\)", " ", _IDS.sub(" ", text)).split())


def requirement_query(title: str, statement: str, criteria: Sequence[str]) -> str:
    return strip_ids(" ".join([title, statement, *criteria]))


def _linked(links: Sequence[Link]) -> set[str]:
    return {lk.path for lk in links if lk.state != "rejected"}


def queries_of(trace: Trace) -> list[tuple[str, str, str]]:
    """``(requirement, via, query)``: each requirement's own text, and each of its tasks' titles."""
    queries: list[tuple[str, str, str]] = []
    for rid, row in trace.rows.items():
        q = requirement_query(row.req.title, row.req.statement, row.req.criteria)
        if q:
            queries.append((rid, rid, q))
    for tid, task in trace.tasks.items():
        q = strip_ids(task.title)
        if not q:
            continue
        for rid, row in trace.rows.items():
            if any(lk.target == tid for lk in row.links["tasks"]):
                queries.append((rid, tid, q))
    return queries


def add_to(trace: Trace, suggestions: Mapping[str, Sequence[Suggestion]]) -> int:
    """Put ``suggestions`` into the matrix as links of source and state ``suggested`` (they count for nothing)."""
    from core.trace.matrix import Link

    n = 0
    for rid, items in suggestions.items():
        row = trace.rows.get(rid)
        if row is None:
            continue
        for s in items:
            col = "code" if s.kind == "code" else "tests"
            row.links[col].append(Link(s.kind, s.path, s.path, s.line, "suggested", state="suggested", via=s.via,
                                       title=s.symbol, context=f"score {s.score:.2f}"))
            row.links[col].sort(key=lambda lk: (lk.path, lk.line, lk.target))
            n += 1
    return n


def suggest(trace: Trace, search: SearchFn, *, threshold: float = THRESHOLD, per_kind: int = PER_KIND,
            k: int = K, role: Callable[[str], str | None] | None = None) -> dict[str, list[Suggestion]]:
    """Suggestions per requirement ID (only requirements that get any), see the module docstring.

    ``role(path)`` says what a path is (``test``, a spec role, or None for code); by default the
    trace configuration's own test and spec globs decide.
    """
    if role is None:
        from core.trace.scanner import RoleClassifier

        role = RoleClassifier(trace.scan.config).role
    queries = queries_of(trace)
    rejected = {(lk.via, lk.kind, lk.path, lk.line) for lk in trace.rejected}
    cache: dict[str, Sequence[Mapping[str, Any]]] = {}
    best: dict[tuple[str, str, str], Suggestion] = {}
    for rid, via, q in queries:
        hits = cache.get(q)
        if hits is None:
            hits = cache[q] = search(q, k)
        row = trace.rows[rid]
        for h in hits:
            score = float(h["score"])
            path = str(h["path"])
            if score < threshold or str(h.get("language") or "") in NOT_CODE:
                continue
            r = role(path)
            kind = "test" if r == "test" else "code" if r is None else None
            line = int(h["start_line"])
            if kind is None or path in _linked(row.links["code" if kind == "code" else "tests"]):
                continue
            if (rid, kind, path, 0) in rejected or (rid, kind, path, line) in rejected:
                continue
            key = (rid, kind, path)
            old = best.get(key)
            if old is None or score > old.score:
                best[key] = Suggestion(rid, kind, path, line, int(h["end_line"]), str(h.get("symbol") or ""),
                                       round(score, 4), via)
    out: dict[str, list[Suggestion]] = {}
    for s in sorted(best.values(), key=lambda s: (-s.score, s.path, s.line)):
        mine = out.setdefault(s.requirement, [])
        if sum(1 for x in mine if x.kind == s.kind) < per_kind:
            mine.append(s)
    return out


class SuggestionCache:
    """Search hits per query, per repository and code-index version: what trace reads suggest from.

    A trace read never searches: it suggests from the hits cached for the current index version
    (:meth:`apply`) and records the queries it had no hits for (:meth:`missing`); the engine
    fills those in the background (:meth:`put`) and the next read shows them.  A new index
    version (the project was re-indexed) drops the cached hits.  Thread-safe.
    """

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._state: dict[tuple[str, Any], dict[str, Any]] = {}

    def _get(self, tenant: str, root: Any) -> dict[str, Any]:
        return self._state.setdefault((tenant, root), {"version": None, "hits": {}, "missing": [], "note": (
            "no code index: suggested links come from code search; index the project with: musubi index"),
            "count": 0})

    def off(self, tenant: str, root: Any, note: str) -> None:
        """No index to suggest from (none yet, or no project): no suggestions, and why."""
        with self._lock:
            st = self._get(tenant, root)
            st.update(version=None, hits={}, missing=[], note=note)

    def use(self, tenant: str, root: Any, version: str) -> None:
        """The project's index is at ``version``: keep the hits of that version, drop older ones."""
        with self._lock:
            st = self._get(tenant, root)
            if st["version"] != version:
                st.update(version=version, hits={}, note="")

    def put(self, tenant: str, root: Any, version: str, query: str, hits: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            st = self._get(tenant, root)
            if st["version"] == version:
                st["hits"][query] = list(hits)

    def missing(self, tenant: str, root: Any) -> tuple[str | None, list[str]]:
        """The index version and the queries the last read had no hits for."""
        with self._lock:
            st = self._get(tenant, root)
            return st["version"], list(st["missing"])

    def apply(self, tenant: str, root: Any, trace: Trace) -> None:
        """Add the suggestions the cached hits give to ``trace`` (called on every trace build)."""
        with self._lock:
            st = self._get(tenant, root)
            if st["version"] is None:
                return
            hits = dict(st["hits"])
        need = sorted({q for _r, _v, q in queries_of(trace)} - set(hits))
        found = suggest(trace, lambda q, _k: hits.get(q, ()), threshold=self.threshold)
        n = add_to(trace, found)
        with self._lock:
            st.update(missing=need, count=n)

    def status(self, tenant: str, root: Any) -> dict[str, Any]:
        """``suggestions`` of the trace report: state (none / updating / ready), count, threshold, note."""
        with self._lock:
            st = self._get(tenant, root)
            state = "none" if st["version"] is None else "updating" if st["missing"] else "ready"
            note = st["note"] or ("suggested links are being computed from the code index; they show on the next "
                                  "refresh" if state == "updating" else "")
            return {"state": state, "count": st["count"] if state != "none" else 0, "threshold": self.threshold,
                    "index": st["version"], "note": note}
