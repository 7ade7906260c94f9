"""Kiro, Spec Kit and MUSUBI-variant repositories written the way their users write them."""

from __future__ import annotations

from pathlib import Path

from core.trace.lint import lint_specs
from core.trace.matrix import build
from core.trace.scanner import scan


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


KIRO = {
    ".kiro/specs/billing/requirements.md": (
        "# Requirements Document\n\n## Requirements\n\n### Requirement 1\n\n"
        "**User Story:** As a tenant, I want monthly invoices, so that I can pay.\n\n#### Acceptance Criteria\n\n"
        "1. WHEN a billing period closes THEN the system SHALL create one invoice per tenant\n"
        "2. WHILE a tenant is suspended THE system SHALL hold its invoices\n"
        "3. WHEN a tenant pays the system marks it\n\n"
        "### Requirement 2\n\n**User Story:** As an auditor, I want exports, so that I can check.\n\n"
        "#### Acceptance Criteria\n\n1. IF an export fails THEN the system SHALL retry it once\n"
    ),
    ".kiro/specs/billing/tasks.md": (
        "# Implementation Plan\n\n- [x] 1. Invoice job\n  - _Requirements: 1.1, 1.2_\n"
        "- [ ]* 2. Export retry\n  - _Requirements: 2.1, 9.9_\n"
    ),
    ".kiro/specs/billing/design.md": (
        "# Design\n\n## Overview\n\nNone.\n\n### Property 1: one invoice\n\n**Validates: Requirements 1.1**\n"
    ),
    ".kiro/specs/auth/requirements.md": (
        "# Requirements\n\n### Requirement 1\n\n**User Story:** As a user, I want login, so that I get in.\n\n"
        "#### Acceptance Criteria\n\n1. WHEN a user logs in THEN the system SHALL issue a session\n"
    ),
    "src/invoice.ts": "// Feature: billing\n// Requirements: 1.1, 1.2\nexport const x = 1;\n",
    "src/ambiguous.ts": "// Requirement 1\nexport const y = 2;\n",
    "tests/export.test.ts": "// Feature: billing\nit('Requirements 2.1 retries', () => {});\n",
}


def test_kiro_layout(tmp_path: Path) -> None:
    s = scan(_write(tmp_path, KIRO))
    t = build(s)
    assert list(t.rows) == ["auth:1", "billing:1", "billing:2"]
    assert t.rows["billing:1"].req.criteria_ids == ["billing:1.1", "billing:1.2", "billing:1.3"]
    assert t.rows["billing:1"].req.title == "Monthly invoices"
    assert sorted(t.tasks) == ["billing:task-1", "billing:task-2"] and t.tasks["billing:task-2"].optional
    b1 = t.rows["billing:1"]
    assert [lk.target for lk in b1.links["tasks"]] == ["billing:task-1"]
    assert [lk.target for lk in b1.links["design"]] == [".kiro/specs/billing/design.md#property-1-one-invoice"]
    assert [(lk.path, lk.via) for lk in b1.links["code"]] == [
        ("src/invoice.ts", "billing:1.1"),
        ("src/invoice.ts", "billing:1.2"),
    ]
    assert b1.shallow == {"design": True, "tasks": True, "code": True, "tests": False}
    assert [(lk.path, lk.via) for lk in t.rows["billing:2"].links["tests"]] == [("tests/export.test.ts", "billing:2.1")]
    assert [(d["id"], d["path"]) for d in t.dangling] == [("billing:9.9", ".kiro/specs/billing/tasks.md")]
    assert [(a["id"], a["candidates"]) for a in t.ambiguous] == [("1", ["auth", "billing"])]
    assert {x["folder"]: x["layout"] for x in s.layouts} == {".kiro/specs/auth": "kiro", ".kiro/specs/billing": "kiro"}
    # The criteria are the EARS: "WHILE x THE y SHALL" is the guide's form; criterion 1.3 has no SHALL.
    found = [(f.rule, f.path.split("/")[-1], f.line, f.message.split(": ")[0].split(" ")[0])
             for f in lint_specs(s.specs, s.config.ids) if f.severity == "error"]
    assert found == [
        ("ears.no-shall", "requirements.md", 13, "billing:1.3"),
        ("ref.unknown-id", "tasks.md", 6, "billing:9.9"),
    ]


SPECKIT = {
    "specs/001-albums/spec.md": (
        "# Feature Specification: Albums\n\n## Requirements\n\n### Functional Requirements\n\n"
        "- **FR-001**: System MUST let users create albums\n- **FR-002**: System MUST keep albums for "
        "[NEEDS CLARIFICATION: how long?]\n\n## Success Criteria\n\n"
        "- **SC-001**: Users create an album in under a minute\n"
    ),
    "specs/001-albums/tasks.md": (
        "# Tasks\n\n## Phase 3: User Story 1 (FR-001)\n\n"
        "- [ ] T001 [P] [US1] Album model in src/album.py\n- [x] T002 [US1] Album API\n"
    ),
    "specs/001-albums/plan.md": "# Plan\n\n## Storage\n\nFR-002 keeps albums in SQLite.\n",
    "specs/002-sharing/spec.md": "# Spec\n\n- **FR-001**: System MUST share albums by link\n",
    "specs/002-sharing/tasks.md": "# Tasks\n\n- [ ] T001 Share link\n",
    "src/album.py": "# FR-001: albums\n",
}


def test_speckit_layout_and_active_feature(tmp_path: Path) -> None:
    import subprocess

    root = _write(tmp_path, SPECKIT)
    subprocess.run(["git", "init", "-q", "-b", "002-sharing", str(root)], check=True)
    s = scan(root)
    t = build(s)
    assert list(t.rows) == ["001-albums:FR-001", "001-albums:FR-002", "001-albums:SC-001", "002-sharing:FR-001"]
    assert t.duplicates == []  # T001 and FR-001 restart in every feature folder
    t1 = t.tasks["001-albums:T001"]
    assert (t1.parallel, t1.story, t1.status) == (True, "US1", "todo")
    assert [lk.target for lk in t.rows["001-albums:FR-001"].links["tasks"]] == ["001-albums:T001", "001-albums:T002"]
    assert [lk.target for lk in t.rows["001-albums:FR-002"].links["design"]] == ["specs/001-albums/plan.md#storage"]
    # The branch names the active feature: a bare FR-001 in code means 002-sharing's.
    assert s.active_feature == "002-sharing"
    assert [lk.path for lk in t.rows["002-sharing:FR-001"].links["code"]] == ["src/album.py"]
    rules = [(f.rule, f.id) for f in lint_specs(s.specs, s.config.ids)]
    assert rules == [("spec.needs-clarification", "001-albums:FR-002")]


MUSUBI = {
    "storage/specs/p.md": (
        "# Reqs\n\n## Prompts\n\n#### REQ-PROMPT-001\n\n**Type**: Event-Driven\n**Status**: ✅ Implemented\n\n"
        "**EARS Statement**:\n```\nWHEN a user sends a prompt,\nTHEN the system SHALL answer it.\n```\n\n"
        "**Acceptance Criteria**:\n- [x] Answers arrive\n\n**Traceability**:\n- Design: ADR-P4-001\n"
    ),
    "storage/design/d.md": (
        "# Design\n\n### ADR-P4-001: Prompt engine\n\nText.\n\n## Traceability Matrix\n\n| ADR | Requirements |\n"
        "|---|---|\n| ADR-P4-001: engine | REQ-PROMPT-001 |\n"
    ),
    "storage/tasks/t.md": (
        "# Tasks\n\n### Task 1.1: Engine\n**ID**: TASK-PR-001\n\nServes REQ-PROMPT-001.\n\n## Summary\n"
        "- TASK-PR-001: Engine\n\n## Order\n1. TASK-PR-001 → TASK-PR-002\n"
    ),
    "conf/prompts.toml": 'text = """\n# REQ-GONE-001 is sample text\n"""\n',
    "tests/fixtures/sample.py": 'SPEC = "REQ-GONE-002"\n',
    "src/x.py": "# REQ-GONE-003  musubi-trace: ignore\n",
}


def test_musubi_variants(tmp_path: Path) -> None:
    s = scan(_write(tmp_path, MUSUBI))
    t = build(s)
    r = t.rows["REQ-PROMPT-001"].req
    assert (r.title, r.statement, r.status) == (
        "Prompts",
        "WHEN a user sends a prompt, THEN the system SHALL answer it.",
        "done",
    )
    assert r.criteria == ["Answers arrive"]  # stops at **Traceability**
    assert list(t.tasks) == ["TASK-PR-001"] and t.tasks["TASK-PR-001"].title == "Engine"
    assert t.duplicates == []
    assert [lk.target for lk in t.rows["REQ-PROMPT-001"].links["design"]] == ["ADR-P4-001"]
    assert t.dangling == []  # TOML string, fixture string and the ignore marker are not references
    assert [f.rule for f in lint_specs(s.specs, s.config.ids)] == []


def test_spec_files_with_nothing_recognised(tmp_path: Path) -> None:
    s = scan(_write(tmp_path, {".kiro/specs/x/requirements.md": "# Requirements\n\n## Login\n\nUsers log in.\n"}))
    d = s.diagnosis()
    assert d is not None and d["likely_layout"] == "kiro" and d["spec_files"] == [".kiro/specs/x/requirements.md"]
    assert "Requirement N" in d["message"] and "no requirement was recognised" in d["message"]
    assert scan(_write(tmp_path / "ok", KIRO)).diagnosis() is None
