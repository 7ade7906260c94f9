"""Exact expected matrix of the fixture repository, in both listing modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.trace.matrix import COLUMNS, Trace, build
from core.trace.scanner import scan

EXPECTED = {
    "REQ-AUTH-001": {
        "design": ["ADR-001@5<REQ-AUTH-001"],
        "tasks": ["TASK-001@4<REQ-AUTH-001", "TASK-AUTH-001@6<REQ-AUTH-001"],
        "code": ["src/auth/login.py:10<REQ-AUTH-001", "src/auth/login.py:3<TASK-AUTH-001", "src/auth/session.ts:7<ADR-001"],
        "tests": ["tests/test_login.py:4<TASK-AUTH-001", "tests/test_login.py:5<REQ-AUTH-001"],
    },
    # Prefix collision: REQ-AUTH-0010 is its own requirement, never a hit of REQ-AUTH-001.
    "REQ-AUTH-0010": {
        "design": [],
        "tasks": [],
        "code": ["src/auth/login.py:10<REQ-AUTH-0010", "src/auth/session.ts:1<REQ-AUTH-0010"],
        "tests": ["tests/test_login.py:14<REQ-AUTH-0010"],
    },
    # Only the CRLF comment counts: strings in production code, prose, vendor/ (excluded),
    # build/ and *.log (.gitignore'd) do not.
    "REQ-AUTH-002": {
        "design": ["storage/design/auth-design.md#container-api-gateway@9<REQ-AUTH-002"],
        "tasks": ["TASK-AUTH-002@7<REQ-AUTH-002"],
        "code": ["src/crlf.py:3<REQ-AUTH-002"],
        "tests": ["tests/test_login.py:10<REQ-AUTH-002"],
    },
    "REQ-AUTH-SSO-001": {
        "design": ["ADR-001@5<REQ-AUTH-SSO-001"],
        "tasks": [],
        "code": ["src/auth/session.ts:4<REQ-AUTH-SSO-001", "src/auth/session.ts:7<ADR-001"],
        "tests": ["web/__tests__/session.test.js:2<REQ-AUTH-SSO-001"],
    },
    "REQ-BILL-001": {
        "design": [".kiro/specs/billing/design.md#component-invoicer@9<REQ-BILL-001"],
        "tasks": ["TASK-BILL-001@7<REQ-BILL-001"],
        "code": ["src/billing/invoice.go:3<REQ-BILL-001", "src/billing/invoice.go:3<TASK-BILL-001"],
        "tests": ["src/billing/invoice_test.go:5<REQ-BILL-001"],
    },
    # Non-UTF-8 bytes around the ID; the huge and the binary file are skipped.
    "REQ-BILL-002": {"design": [], "tasks": [], "code": ["src/latin1.c:2<REQ-BILL-002"], "tests": []},
    "REQ-CRLF-001": {"design": [], "tasks": [], "code": [], "tests": []},
}

SHALLOW = {
    "REQ-AUTH-001": (True, True, True, True),
    "REQ-AUTH-0010": (False, False, True, True),
    "REQ-AUTH-002": (True, True, True, True),
    "REQ-AUTH-SSO-001": (True, False, True, True),
    "REQ-BILL-001": (True, True, True, True),
    "REQ-BILL-002": (False, False, True, False),
    "REQ-CRLF-001": (False, False, False, False),
}
DEEP = {
    "REQ-AUTH-001": (True, True, False, False),  # TASK-001 is cited by no code and no test
    "REQ-AUTH-0010": (False, False, False, False),
    "REQ-AUTH-002": (True, True, False, False),
    "REQ-AUTH-SSO-001": (True, False, False, False),
    "REQ-BILL-001": (True, True, True, False),  # TASK-BILL-001 has code, no test
    "REQ-BILL-002": (False, False, False, False),
    "REQ-CRLF-001": (False, False, False, False),
}


def compact(t: Trace) -> dict[str, dict[str, list[str]]]:
    out = {}
    for rid, r in t.rows.items():
        out[rid] = {
            c: sorted(
                f"{lk.target}@{lk.line}<{lk.via}" if c in ("design", "tasks") else f"{lk.path}:{lk.line}<{lk.via}"
                for lk in r.links[c]
            )
            for c in COLUMNS
        }
    return out


@pytest.mark.parametrize("mode", ["git", "walk"])
def test_exact_matrix(mode: str, repo: Path, plain_repo: Path) -> None:
    root = repo if mode == "git" else plain_repo
    s = scan(root)
    assert s.listing == mode
    t = build(s)
    assert compact(t) == EXPECTED
    assert {rid: tuple(r.shallow[c] for c in COLUMNS) for rid, r in t.rows.items()} == SHALLOW
    assert {rid: tuple(r.deep[c] for c in COLUMNS) for rid, r in t.rows.items()} == DEEP


def test_skipped_files_and_reasons(repo: Path) -> None:
    s = scan(repo)
    assert s.skipped == {
        "src/auth/login_link.py": "symlink",
        "src/billing/up": "symlink",
        "src/blob.dat": "binary",
        "src/huge.js": "larger than max_file_bytes (140044 > 100000)",
        "src/loop": "symlink",
    }


def test_contexts_of_scanned_links(repo: Path) -> None:
    t = build(scan(repo))
    ctx = {(lk.path, lk.line, lk.via): lk.context for r in t.rows.values() for c in ("code", "tests") for lk in r.links[c]}
    assert ctx[("src/auth/login.py", 3, "TASK-AUTH-001")] == "docstring"
    assert ctx[("src/auth/login.py", 10, "REQ-AUTH-001")] == "comment"
    assert ctx[("tests/test_login.py", 5, "REQ-AUTH-001")] == "test-name"
    assert ctx[("tests/test_login.py", 4, "TASK-AUTH-001")] == "test-string"
    assert ctx[("web/__tests__/session.test.js", 2, "REQ-AUTH-SSO-001")] == "test-string"
    assert ctx[("src/billing/invoice_test.go", 5, "REQ-BILL-001")] == "test-name"


def test_gaps_orphans_dangling(repo: Path) -> None:
    t = build(scan(repo))
    g = t.gaps()
    assert [(x["id"], x["missing"]) for x in g["requirements"]] == [
        ("REQ-AUTH-0010", ["design", "tasks"]),
        ("REQ-AUTH-SSO-001", ["tasks"]),
        ("REQ-BILL-002", ["design", "tasks", "tests"]),
        ("REQ-CRLF-001", ["design", "tasks", "code", "tests"]),
    ]
    assert [(o["kind"], o["id"], o["path"], o["line"]) for o in g["orphans"]] == [
        ("design", "ADR-002", "storage/design/auth-design.md", 15),
        ("task", "TASK-003", "storage/tasks/auth-tasks.md", 8),
    ]
    assert [(d["id"], d["path"], d["line"], d["from"]) for d in g["dangling"]] == [
        ("REQ-NOPE-001", "src/dangling.py", 1, "code"),
        ("TASK-999", "src/dangling.py", 2, "code"),
        ("REQ-AUTH-999", "storage/design/auth-design.md", 13, "design"),
    ]
    assert g["duplicates"] == []


def test_summary_and_grade(repo: Path) -> None:
    s = build(scan(repo)).summary()
    assert s["requirements"] == 7
    assert {c: v["covered"] for c, v in s["columns"].items()} == {"design": 4, "tasks": 3, "code": 6, "tests": 5}
    assert s["overall"] == round(100 * 18 / 28, 1) == 64.3
    assert s["grade"] == "D"
    assert s["deep"]["overall"] == round(100 * 8 / 28, 1)
    assert s["deep"]["grade"] == "F"
    assert (s["orphans"], s["dangling"], s["tasks"], s["design_elements"]) == (2, 3, 5, 4)


def test_impact_lists_everything_downstream(repo: Path) -> None:
    imp = build(scan(repo)).impact("REQ-AUTH-001")
    assert [d["target"] for d in imp["design"]] == ["ADR-001"]
    assert [d["target"] for d in imp["tasks"]] == ["TASK-001", "TASK-AUTH-001"]
    assert [(c["path"], c["line"]) for c in imp["code"]] == [("src/auth/login.py", 3), ("src/auth/login.py", 10), ("src/auth/session.ts", 7)]
    assert [(c["path"], c["line"]) for c in imp["tests"]] == [("tests/test_login.py", 4), ("tests/test_login.py", 5)]
    # REQ-AUTH-SSO-001 depends on REQ-AUTH-001.
    assert [r["id"] for r in imp["requirements"]] == ["REQ-AUTH-SSO-001"]
    assert imp["files"] == sorted({
        "storage/design/auth-design.md", "storage/tasks/auth-tasks.md", "src/auth/login.py",
        "src/auth/session.ts", "tests/test_login.py",
    })


def test_grade_boundaries() -> None:
    from core.trace.matrix import grade

    assert [grade(p) for p in (100, 90, 89.9, 80, 70, 60, 59.9, 0)] == ["A", "A", "B", "B", "C", "D", "F", "F"]
