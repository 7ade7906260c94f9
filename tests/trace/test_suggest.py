"""Suggested trace links from a fake search function: exact suggestions, filters, links.yml decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.trace.service import TraceService
from core.trace.suggest import THRESHOLD, Suggestion, queries_of, strip_ids, suggest
from tests.trace.fixture import build_repo

LOGOUT_Q = ("Logout The Auth Service SHALL revoke the session token when the user logs out. A revoked token is "
            "refused by every endpoint.")
LOGIN_TASK_Q = "Login endpoint"


def h(path: str, line: int, score: float, symbol: str = "", lang: str = "python") -> dict[str, Any]:
    return {"path": path, "start_line": line, "end_line": line + 2, "symbol": symbol, "language": lang,
            "score": score, "snippet": ""}


HITS: dict[str, list[dict[str, Any]]] = {
    LOGOUT_Q: [
        h("src/auth/logout.py", 1, 2.5, "logout"),
        h("tests/test_login.py", 9, 2.2, "test_logout"),  # already linked (scanned): not suggested
        h("src/auth/logout.py", 20, 1.9, "revoke"),  # same file again: the better chunk stays
        h("notes/README.md", 1, 3.0, "Notes", "markdown"),  # prose: neither code nor test
        h("storage/specs/auth.md", 14, 3.0, "Logout", "markdown"),  # the spec itself
        h("tests/test_session.py", 1, 1.3, "test_revoked"),
        h("src/auth/session.ts", 6, 0.4, "check", "typescript"),  # below the threshold
    ],
    LOGIN_TASK_Q: [h("src/api/routes.py", 5, 1.7, "login_route"), h("src/auth/login.py", 8, 1.6, "login")],
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path / "repo", git=False)


def fake_search(calls: list[str]) -> Any:
    def search(q: str, k: int) -> list[dict[str, Any]]:
        calls.append(q)
        assert k == 20
        return HITS.get(q, [])
    return search


def test_ids_are_stripped_from_queries() -> None:
    assert strip_ids("Logout endpoint (REQ-AUTH-002)") == "Logout endpoint"
    assert strip_ids("see TASK_BILL_001, req-auth-0010 and ADR-7.2 now") == "see , and now"


def test_exact_suggestions_per_requirement_from_its_text_and_its_tasks(repo: Path) -> None:
    t = TraceService().trace("t", repo)
    calls: list[str] = []
    got = suggest(t, fake_search(calls), threshold=1.0)
    assert got == {
        "REQ-AUTH-002": [Suggestion("REQ-AUTH-002", "code", "src/auth/logout.py", 1, 3, "logout", 2.5, "REQ-AUTH-002"),
                         Suggestion("REQ-AUTH-002", "test", "tests/test_session.py", 1, 3, "test_revoked", 1.3,
                                    "REQ-AUTH-002")],
        # login.py is linked to REQ-AUTH-001 already; routes.py is found through the task's title.
        "REQ-AUTH-001": [Suggestion("REQ-AUTH-001", "code", "src/api/routes.py", 5, 7, "login_route", 1.7,
                                    "TASK-AUTH-001")],
    }
    assert sorted(calls) == sorted({q for _r, _v, q in queries_of(t)})  # each distinct query asked once


def test_threshold_and_per_kind_cap(repo: Path) -> None:
    t = TraceService().trace("t", repo)
    assert suggest(t, fake_search([]), threshold=3.5) == {}
    got = suggest(t, fake_search([]), threshold=0.0, per_kind=1)
    assert [(s.kind, s.path) for s in got["REQ-AUTH-002"]] == [("code", "src/auth/logout.py"),
                                                              ("test", "tests/test_session.py")]


def test_rejected_and_accepted_decisions_are_not_suggested_again(repo: Path) -> None:
    svc = TraceService()
    svc.decide_link("t", repo, "REQ-AUTH-002", "test", "tests/test_login.py", None, "rejected", "suggested", "al")
    (repo / "src" / "auth" / "logout.py").write_text("def logout():\n    pass\n")
    svc.decide_link("t", repo, "REQ-AUTH-002", "code", "src/auth/logout.py", None, "accepted", "suggested", "al")
    (repo / "tests" / "test_session.py").write_text("def test_revoked():\n    pass\n")
    svc.decide_link("t", repo, "REQ-AUTH-002", "test", "tests/test_session.py", 1, "rejected", "suggested", "al")
    got = suggest(svc.trace("t", repo), fake_search([]), threshold=1.0)
    assert "REQ-AUTH-002" not in got  # accepted: linked; rejected at that line: never offered again


def test_the_service_suggests_from_cached_hits_only_and_never_searches(repo: Path) -> None:
    svc = TraceService()
    report = svc.report("t", repo)
    before = report["summary"]
    assert report["suggestions"]["state"] == "none" and "musubi index" in report["suggestions"]["note"]
    svc.suggestions.use("t", repo, "v1")
    report = svc.report("t", repo)
    version, missing = svc.suggestions.missing("t", repo)
    assert version == "v1" and LOGOUT_Q in missing and report["suggestions"]["state"] == "updating"
    for q in missing:
        svc.suggestions.put("t", repo, "v1", q, HITS.get(q, []))
    svc.suggestions.put("t", repo, "v0", LOGOUT_Q, [])  # an answer for an older index version is dropped
    report = svc.report("t", repo)
    assert report["suggestions"] == {"state": "ready", "count": 3, "threshold": THRESHOLD, "index": "v1", "note": ""}
    row = next(r for r in report["requirements"] if r["id"] == "REQ-AUTH-002")
    sugg = [lk for lk in row["links"]["code"] if lk["state"] == "suggested"]
    assert sugg == [{"kind": "code", "target": "src/auth/logout.py", "path": "src/auth/logout.py", "line": 1,
                     "source": "suggested", "state": "suggested", "via": "REQ-AUTH-002", "title": "logout",
                     "status": "", "context": "score 2.50"}]
    assert report["summary"] == before  # suggestions count for nothing until accepted
    svc.suggestions.use("t", repo, "v2")  # re-indexed: the old hits go
    assert svc.report("t", repo)["suggestions"]["count"] == 0


def test_the_trace_screen_header_says_where_suggestions_stand() -> None:
    from tui.screens.trace_labels import suggestions_hint

    assert suggestions_hint({}) == ""  # an engine without suggestions: nothing shown
    assert suggestions_hint({"suggestions": {"state": "none", "count": 0}}) == (
        "  · no code index: musubi index for suggestions")
    assert suggestions_hint({"suggestions": {"state": "updating", "count": 0}}) == (
        "  · suggestions updating (r re-scans)")
    assert suggestions_hint({"suggestions": {"state": "ready", "count": 4}}) == "  · 4 suggested"
    assert suggestions_hint({"suggestions": {"state": "ready", "count": 0}}) == ""
