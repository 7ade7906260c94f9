"""Measuring suggested links against a repository's known links: precision@3 and recall per threshold (light).

Ground truth: the code and test files the trace already links to each requirement (IDs the
scanner found, links accepted in links.yml).  Those links are hidden from the suggester twice:
the rows it sees have no code or test links (so nothing is filtered as "already linked"), and the
search it uses must be built over code whose IDs were masked (:func:`mask_ids`; see
:class:`core.rag.local.LocalSearch`), so it cannot find a file by the ID it cites.

- precision@3: of the (at most) three best suggestions of each requirement, the share whose
  file is linked to it (micro-averaged over every suggestion made);
- recall: the share of known (requirement, file) pairs among the suggestions (at most
  ``PER_KIND`` per kind);
- F0.5 of the two picks the threshold: precision counts twice, since every wrong suggestion
  asks a person to reject it while a missed one leaves the trace as it is today.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.trace.suggest import PER_KIND, SearchFn, Suggestion, suggest

if TYPE_CHECKING:
    from core.trace.matrix import Trace

# IDs as they appear in code, test names included (test_req_auth_001_login, TestREQ_BILL_001).
_MASK = re.compile(r"(?i)(?:REQ|TASK|ADR)[-_](?:[A-Z]+[-_])*\d+(?:\.\d+)*")


def mask_ids(text: str) -> str:
    """``text`` with requirement, task and ADR IDs removed (lines kept)."""
    return _MASK.sub("", text)


def known_links(trace: Trace) -> dict[str, set[str]]:
    """Requirement -> the code and test files linked to it (not rejected, not suggested)."""
    skip = ("rejected", "suggested")
    return {rid: {lk.path for c in ("code", "tests") for lk in row.links[c] if lk.state not in skip}
            for rid, row in trace.rows.items()}


def hide_links(trace: Trace) -> None:
    """Drop every code and test link from the rows (the suggester must not see the answers)."""
    for row in trace.rows.values():
        row.links["code"], row.links["tests"] = [], []


@dataclass(frozen=True)
class Point:
    threshold: float
    suggested: int  # suggestions in the top 3s
    correct: int
    found: int  # known pairs suggested (top PER_KIND per kind)
    known: int

    @property
    def precision(self) -> float:
        return self.correct / self.suggested if self.suggested else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.known if self.known else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def f05(self) -> float:
        """F0.5: precision weighs twice recall (a wrong suggestion costs a reviewer; a missed one costs nothing new)."""
        p, r = self.precision, self.recall
        return 1.25 * p * r / (0.25 * p + r) if p + r else 0.0


def measure(trace: Trace, search: SearchFn, thresholds: Sequence[float]) -> list[Point]:
    """One :class:`Point` per threshold (the trace is modified: its code and test links are hidden)."""
    truth = known_links(trace)
    hide_links(trace)
    every = suggest(trace, search, threshold=float("-inf"), per_kind=PER_KIND)
    known = sum(len(v) for v in truth.values())
    points = []
    for t in thresholds:
        suggested = correct = found = 0
        for rid, items in every.items():
            kept: list[Suggestion] = [s for s in items if s.score >= t]
            top3 = sorted(kept, key=lambda s: -s.score)[:3]
            suggested += len(top3)
            correct += sum(1 for s in top3 if s.path in truth.get(rid, ()))
            found += len({s.path for s in kept} & truth.get(rid, set()))
        points.append(Point(t, suggested, correct, found, known))
    return points


def best(runs: Sequence[Sequence[Point]]) -> float:
    """The threshold with the best mean F0.5 over ``runs`` (each measured at the same thresholds; ties: higher)."""
    n = len(runs[0])
    return runs[0][max(range(n), key=lambda i: (round(sum(r[i].f05 for r in runs) / len(runs), 6),
                                               runs[0][i].threshold))].threshold
