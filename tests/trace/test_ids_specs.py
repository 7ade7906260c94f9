"""ID matching, configuration, and spec parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadRequest
from core.trace.config import TraceConfig
from core.trace.ids import IdPatterns
from core.trace.lexer import scan_text
from core.trace.scanner import scan
from core.trace.specs import parse_spec

IDS = IdPatterns()


def test_whole_token_matching() -> None:
    text = "REQ-AUTH-001 REQ-AUTH-0010 XREQ-AUTH-001 REQ-AUTH-001_x REQ-AUTH-001-x a-REQ-AUTH-001 (REQ-AUTH-SSO-002). REQ-AUTH-001."
    assert [tok for _p, tok in IDS.find(text)] == ["REQ-AUTH-001", "REQ-AUTH-0010", "REQ-AUTH-SSO-002", "REQ-AUTH-001"]


def test_task_and_design_forms() -> None:
    assert [t for _p, t in IDS.find("TASK-001 TASK-AUTH-001 TASK-AUTH-UI-002 ADR-001 ADR-1 TASK-auth-001")] == [
        "TASK-001", "TASK-AUTH-001", "TASK-AUTH-UI-002", "ADR-001",
    ]
    assert IDS.kind_of("REQ-AUTH-001") == "requirement"
    assert IDS.kind_of("TASK-AUTH-001") == "task"
    assert IDS.kind_of("ADR-007") == "design"
    assert IDS.kind_of("REQ-auth-001") is None


def test_identifier_form_in_test_names() -> None:
    hits = scan_text(
        "def test_req_auth_001_login(): pass\nfunc TestREQ_AUTH_002(t) {}\ndef test_req_auth_0010(): pass\ndef testreq_auth_003(): pass\n",
        "t_test.py", True, IDS,
    )
    assert [(h[0], h[1], h[2]) for h in hits] == [
        ("REQ-AUTH-001", 1, "test-name"), ("REQ-AUTH-002", 2, "test-name"), ("REQ-AUTH-0010", 3, "test-name"),
    ]
    # Identifier forms count only in test files.
    assert scan_text("def test_req_auth_001(): pass\n", "src/x.py", False, IDS) == []


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("a.py", '# REQ-A-001\nx = "REQ-A-002"\n', [("REQ-A-001", 1, "comment"), ("REQ-A-002", 2, "string")]),
        ("a.py", '"""Doc REQ-A-001."""\ns = "#REQ-A-002"\n', [("REQ-A-001", 1, "docstring"), ("REQ-A-002", 2, "string")]),
        ("a.ts", "/* REQ-A-001\n REQ-A-002 */ f('REQ-A-003') // REQ-A-004\n", [("REQ-A-001", 1, "comment"), ("REQ-A-002", 2, "comment"), ("REQ-A-003", 2, "string"), ("REQ-A-004", 2, "comment")]),
        ("q.sql", "-- REQ-A-001\nSELECT 'REQ-A-002';\n", [("REQ-A-001", 1, "comment"), ("REQ-A-002", 2, "string")]),
        ("p.html", "<!-- REQ-A-001 -->\n<p>REQ-A-002</p>\n", [("REQ-A-001", 1, "comment"), ("REQ-A-002", 2, "code")]),
        ("notes.unknownext", "REQ-A-001\n", [("REQ-A-001", 1, "text")]),
        ("a.py", "# REQ-A-001\r\n\r\n# REQ-A-002\r\n", [("REQ-A-001", 1, "comment"), ("REQ-A-002", 3, "comment")]),
    ],
)
def test_lexer_contexts(path: str, text: str, expected: list[tuple[str, int, str]]) -> None:
    assert scan_text(text, path, False, IDS) == expected


def test_custom_patterns_from_musubi_toml(tmp_path: Path) -> None:
    (tmp_path / "musubi.toml").write_text(
        "[trace]\nrequirement_pattern = 'FR-\\d{2}'\nrequirements = ['reqs/*.md']\n"
    )
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "r.md").write_text("## FR-01: Thing\n\nThe system SHALL do the thing well.\n")
    (tmp_path / "main.c").write_text("/* FR-01 */\n/* FR-010 is not FR-01 */\n")
    s = scan(tmp_path)
    assert [r.id for d in s.specs for r in d.requirements] == ["FR-01"]
    # FR-010 is not a token of FR-\d{2}: the pattern must end where the token ends.
    assert s.code == {"main.c": [("FR-01", 1, "comment"), ("FR-01", 2, "comment")]}


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[trace]\nrequirement_pattern = '(REQ'\n", "not a valid regular expression"),
        ("[trace]\nrequirement_pattern = '(REQ)-1'\n", "capturing groups"),
        ("[trace]\nrequirement_pattern = 'x*'\n", "matches the empty string"),
        ("[trace]\nbogus = 1\n", "unknown key(s) bogus"),
        ("[trace]\nexclude = 'vendor'\n", "must be a list"),
        ("[trace]\nmax_file_bytes = -1\n", "positive integer"),
        ("[trace\n", "not valid TOML"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, toml: str, needle: str) -> None:
    (tmp_path / "musubi.toml").write_text(toml)
    with pytest.raises(BadRequest) as ei:
        TraceConfig.load(tmp_path)
    assert needle in ei.value.message


def test_requirement_fields_and_crlf_equivalence() -> None:
    lf = (
        "# R\n\n## REQ-AUTH-001: Password login\n\n> WHEN a user logs in, the Auth Service SHALL\n> issue a token.\n\n"
        "Priority: P0\n**Status**: In Progress\nSee REQ-AUTH-002.\n\n### Acceptance Criteria\n- one\n  continued\n- two\n\n## Other\ntext\n"
    )
    for text in (lf, lf.replace("\n", "\r\n")):
        doc = parse_spec(text, "storage/specs/a.md", "requirements", IDS)
        (r,) = doc.requirements
        assert (r.id, r.title, r.line, r.priority, r.status) == ("REQ-AUTH-001", "Password login", 3, "P0", "in-progress")
        assert r.statement == "WHEN a user logs in, the Auth Service SHALL issue a token."
        assert r.statement_line == 5
        assert r.criteria == ["one continued", "two"]
        assert [(m.id, m.line) for m in r.cites] == [("REQ-AUTH-002", 10)]


def test_tasks_and_malformed_ids() -> None:
    text = (
        "# Plan\n- [x] TASK-001: A (REQ-A-001)\n- [ ] TASK-A-002: B\n  - Status: blocked\n  - serves REQ-A-002\n"
        "- [~] TASK-003 C\n\n## TASK-A-004: Heading task\nImplements REQ-A-003.\n\n## TASK-1: too short\n"
    )
    doc = parse_spec(text, "storage/tasks/t.md", "tasks", IDS)
    assert [(t.id, t.status, [m.id for m in t.cites], t.line) for t in doc.tasks] == [
        ("TASK-001", "done", ["REQ-A-001"], 2),
        ("TASK-A-002", "blocked", ["REQ-A-002"], 3),
        ("TASK-003", "in-progress", [], 6),
        ("TASK-A-004", "todo", ["REQ-A-003"], 8),
    ]
    assert [(m.id, m.line) for m in doc.malformed] == [("TASK-1", 11)]


def test_design_elements() -> None:
    text = "# D\nIntro cites REQ-A-009.\n## ADR-001: Tokens\nREQ-A-001\n### Detail\nREQ-A-002\n## C4 Level 2 - Container: API\nREQ-A-003\n## Risks\nnone\n"
    doc = parse_spec(text, "storage/design/d.md", "design", IDS)
    assert [(e.id, e.kind, e.level, [m.id for m in e.cites]) for e in doc.design] == [
        ("storage/design/d.md", "document", None, ["REQ-A-009"]),
        ("ADR-001", "adr", None, ["REQ-A-001", "REQ-A-002"]),
        ("storage/design/d.md#c4-level-2-container-api", "c4", "container", ["REQ-A-003"]),
    ]


@pytest.mark.parametrize("extra", [[], ["it/**", "*.check.py"], ["it/**", "!it/fixtures/**"]])
def test_role_classifier_agrees_with_pathspec(extra: list[str]) -> None:
    import pathspec

    from core.trace.scanner import RoleClassifier

    cfg = TraceConfig.from_dict({"test_globs": extra})
    paths = [
        "a/b/test_x.py", "x_test.py", "tests/a.py", "pkg/tests/sub/a.py", "src/a.py", "web/__tests__/a.js",
        "a/b.test.ts", "storage/specs/a.md", "storage/specs/x/y.md", "x/storage/specs/a.md",
        ".kiro/specs/f/requirements.md", ".kiro/specs/f/design.md", ".kiro/specs/f/tasks.md", "storage/tasks/t.md",
        "src/FooTest.java", "src/test/java/Foo.java", "a/conftest.py", "a/spec/x_spec.rb", "notes.md",
        "it/a.py", "it/fixtures/b.py", "z/q.check.py", "storage/specs/test_x.py",
    ]
    expected = {}
    for role, globs in (("requirements", cfg.requirement_globs), ("design", cfg.design_globs),
                        ("tasks", cfg.task_globs), ("test", cfg.test_globs)):
        spec = pathspec.GitIgnoreSpec.from_lines(globs)
        for p in paths:
            if p not in expected and spec.match_file(p):
                expected[p] = role
    c = RoleClassifier(cfg)
    assert {p: c.role(p) for p in paths} == {p: expected.get(p) for p in paths}


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"REQ-?\d{3}", "REQ001 REQ-002 xREQ003", ["REQ001", "REQ-002"]),
        (r"REQ-\d{3}|FR-\d{2}", "FR-01 REQ-001 FR-012", ["FR-01", "REQ-001"]),
        (r"(?:REQ|FR)-\d{3}", "FR-001 REQ-002", ["FR-001", "REQ-002"]),
        (r"REQ-\d{3}", "REQ-001REQ-002 REQ-003-x REQ-004.", ["REQ-004"]),
    ],
)
def test_custom_patterns_find_the_same_on_bytes_and_text(pattern: str, text: str, expected: list[str]) -> None:
    ids = IdPatterns(requirement=pattern)
    assert [t for _p, t in ids.find(text)] == expected
    assert [t for _p, t in ids.find_bytes(text.encode())] == expected
