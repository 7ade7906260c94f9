"""The checker's fixed operators, happy and unhappy, and its JSON paths."""

from __future__ import annotations

import pytest

from tutorials.checker import evaluate, parts, resolve

DATA = {"user": "ann", "n": 3, "ratio": 0.5, "flag": False, "none": None, "roles": ["owner", "member"],
        "projects": [{"name": "shop", "files": 4}, {"name": "docs", "files": 0}], "map": {"a": 1}, "text": "hello"}


def ok(path: str, op: str, value: object = None) -> bool:
    return evaluate(DATA, path, op, value).ok


def test_paths() -> None:
    assert parts("$.projects[0].name") == ["projects", 0, "name"]
    assert resolve(DATA, "$.projects[*].name") == ["shop", "docs"]
    assert resolve(DATA, "$.projects[-1].files") == 0
    with pytest.raises(ValueError):
        parts("projects.name")


@pytest.mark.parametrize(("path", "op", "value", "want"), [
    ("$.user", "eq", "ann", True), ("$.user", "eq", "bob", False), ("$.n", "eq", 3.0, True),
    ("$.flag", "eq", 0, False),  # a boolean is not a number
    ("$.user", "ne", "bob", True), ("$.n", "lt", 4, True), ("$.n", "le", 3, True), ("$.n", "gt", 3, False),
    ("$.ratio", "ge", 0.5, True), ("$.user", "gt", "a", True),
    ("$.n", "gt", "2", False),  # a number against text does not hold, it does not raise
    ("$.flag", "lt", 1, False),
    ("$.roles", "contains", "owner", True), ("$.roles", "contains", "admin", False),
    ("$.text", "contains", "ell", True), ("$.map", "contains", "a", True), ("$.n", "contains", 3, False),
    ("$.roles", "not_contains", "admin", True), ("$.n", "not_contains", 1, False),
    ("$.projects[*].name", "contains", "docs", True),
    ("$.none", "exists", None, True), ("$.nothing", "exists", None, False),
    ("$.nothing", "missing", None, True), ("$.user", "missing", None, False),
    ("$.roles", "len_eq", 2, True), ("$.roles", "len_ge", 3, False), ("$.text", "len_le", 5, True),
    ("$.n", "len_eq", 1, False),
    ("$.n", "truthy", None, True), ("$.flag", "truthy", None, False), ("$.projects[1].files", "falsy", None, True),
    ("$.text", "matches", "^h.l+o$", True), ("$.text", "matches", "^x", False), ("$.n", "matches", "3", False),
    ("$.projects[5].name", "eq", "x", False), ("$.user.deeper", "exists", None, False),
])
def test_operators(path: str, op: str, value: object, want: bool) -> None:
    assert ok(path, op, value) is want


def test_details_say_what_was_seen() -> None:
    out = evaluate(DATA, "$.n", "gt", 5)
    assert not out.ok and out.observed == 3 and "3" in out.detail and "does not hold" in out.detail
    out = evaluate(DATA, "$.nothing", "eq", 1)
    assert not out.ok and out.observed is None and "not there" in out.detail
    out = evaluate(DATA, "$.n", "lt", "x")
    assert not out.ok and "cannot order" in out.detail


def test_unknown_operator_is_refused_never_evaluated() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        evaluate(DATA, "$.n", "__import__('os')", None)
