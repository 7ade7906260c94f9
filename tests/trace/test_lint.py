"""EARS lint: each rule, and the false positives the prototype had."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.trace.ids import IdPatterns
from core.trace.lint import ears_pattern, lint_specs, lint_statement
from core.trace.scanner import scan
from core.trace.specs import Requirement, parse_spec


def rules(statement: str, criteria: tuple[str, ...] = ("ok",)) -> list[str]:
    r = Requirement("REQ-A-001", "t", "s.md", 3, statement=statement, statement_line=5, criteria=list(criteria))
    return [f.rule for f in lint_statement(r)]


@pytest.mark.parametrize(
    ("statement", "pattern"),
    [
        ("The Auth Service SHALL issue a session token.", "ubiquitous"),
        ("WHEN a user logs in, the Auth Service SHALL issue a token.", "event-driven"),
        ("WHEN a user logs in THEN the Auth Service SHALL issue a token.", "event-driven"),
        ("WHILE the link is down, the Client SHALL queue writes locally.", "state-driven"),
        ("IF the password is wrong, THEN the Auth Service SHALL refuse the login.", "unwanted"),
        ("WHERE SSO is enabled, the Auth Service SHALL accept IdP tokens.", "optional"),
    ],
)
def test_five_patterns_are_clean(statement: str, pattern: str) -> None:
    assert ears_pattern(statement) == pattern
    assert rules(statement) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("The system issues a token to every user.", ["ears.no-shall"]),
        ("IF the password is wrong, the Auth Service SHALL refuse it.", ["ears.broken-pattern"]),
        ("WHEN a user logs in the Auth Service SHALL issue a token.", ["ears.broken-pattern"]),
        ("WHEN, the Auth Service SHALL issue a token now.", ["ears.broken-pattern"]),
        ("THEN the Auth Service SHALL issue a token.", ["ears.broken-pattern"]),
        ("SHALL issue a token to the user.", ["ears.broken-pattern"]),
        ("The Auth Service SHALL", ["ears.broken-pattern", "ears.too-short"]),
        ("The Auth Service SHALL log and SHALL alert.", ["ears.multiple-shall"]),
        ("The Service SHALL work.", ["ears.too-short"]),
        ("The Auth Service SHALL " + "log every event " * 17, ["ears.too-long"]),
    ],
)
def test_errors_and_shape(statement: str, expected: list[str]) -> None:
    assert rules(statement) == expected


@pytest.mark.parametrize("word", ["should", "could", "might", "may", "will", "can", "must"])
def test_each_ambiguous_word(word: str) -> None:
    assert rules(f"The Auth Service SHALL log it and {word} retry later.") == ["ears.ambiguous-word"]
    assert rules(f"The Auth Service SHALL log it and {word.upper()} retry later.") == ["ears.ambiguous-word"]


@pytest.mark.parametrize(
    "statement",
    [
        "The Auth Service SHALL cancel the pending login request.",  # cancel is not can
        "The Auth Service SHALL notify the mayor of the city council.",  # mayor is not may
        "The Auth Service SHALL store the willingness score per user.",  # willingness is not will
        "The Scanner SHALL scan every canonical path once per run.",  # scan, canonical
        "The Billing Service SHALL send a breakfast voucher every morning.",  # breakfast is not fast
        "The Store SHALL keep somewhere-specific settings per tenant.",  # somewhere-specific is not some
        "The Auth Service SHALL refuse logins that can't be verified.",  # contraction, not the modal
    ],
)
def test_whole_words_only(statement: str) -> None:
    assert rules(statement) == []


@pytest.mark.parametrize("term", ["fast", "user-friendly", "quickly", "appropriate", "etc", "and/or", "as soon as possible"])
def test_vague_terms(term: str) -> None:
    assert rules(f"The Auth Service SHALL respond {term} to each login request.") == ["ears.vague-term"]


def test_missing_statement_and_criteria() -> None:
    assert rules("", ()) == ["ears.missing-statement"]
    assert rules("The Auth Service SHALL issue a session token.", ()) == ["req.no-acceptance-criteria"]


def test_ids_duplicate_malformed_and_unknown() -> None:
    ids = IdPatterns()
    a = parse_spec("## REQ-A-001: One\n\nThe Service SHALL do one useful thing.\n\nAcceptance Criteria:\n- x\n\nDepends on REQ-A-404.\n", "a.md", "requirements", ids)
    b = parse_spec("## REQ-A-001: Again\n\nThe Service SHALL do one useful thing.\n\nAcceptance Criteria:\n- x\n\n## REQ-a-1: bad\n", "b.md", "requirements", ids)
    found = [(f.rule, f.path, f.line, f.id) for f in lint_specs([a, b], ids)]
    assert found == [
        ("ref.unknown-id", "a.md", 8, "REQ-A-404"),
        ("id.duplicate", "b.md", 1, "REQ-A-001"),
        ("id.malformed", "b.md", 8, "REQ-a-1"),
    ]
    f = lint_specs([a, b], ids)[1]
    assert "a.md:1" in f.message and f.severity == "error" and f.hint


def test_fixture_repo_findings(repo: Path) -> None:
    s = scan(repo)
    found = [(f.rule, f.path, f.line, f.id) for f in lint_specs(s.specs, s.config.ids)]
    assert found == [
        ("req.no-acceptance-criteria", ".kiro/specs/billing/requirements.md", 21, "REQ-BILL-002"),
        ("ref.unknown-id", "storage/design/auth-design.md", 13, "REQ-AUTH-999"),
    ]
