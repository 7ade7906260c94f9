"""``musubi trace`` and ``musubi spec lint``: the real command in a subprocess against a real engine."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli.helpers import Cli
from tests.trace.test_layouts import KIRO, MUSUBI, SPECKIT, _write


def test_trace_matrix_from_inside_the_repo(cli: Cli, repo: Path) -> None:
    r = cli.ok("trace", cwd=str(repo / "src" / "auth"))
    assert "overall 64.3% (grade D)" in r.out
    assert "REQ-AUTH-0010" in r.out and "✘ none" in r.out
    data = cli.js("trace", cwd=str(repo / "src"))
    assert data["root"] == str(repo)
    assert [x["id"] for x in data["requirements"]][:2] == ["REQ-AUTH-001", "REQ-AUTH-0010"]
    assert data["scan"]["skipped_files"]["src/blob.dat"] == "binary"


def test_trace_with_path_before_and_after_options(cli: Cli, repo: Path, tmp_path: Path) -> None:
    a = cli.js("trace", str(repo))
    b = json.loads(cli.ok("--json", "trace", str(repo), cwd=str(tmp_path)).out)
    assert a["summary"] == b["summary"] and a["summary"]["requirements"] == 7


def test_show_impact_gaps(cli: Cli, repo: Path) -> None:
    show = cli.js("trace", "show", "REQ-AUTH-001", "--path", str(repo))
    assert show["priority"] == "P0" and show["criteria"][1].startswith("The token expires")
    human = cli.ok("trace", "show", "REQ-AUTH-001", cwd=str(repo)).out
    assert "src/auth/login.py:10" in human and "AC2." in human
    imp = cli.js("trace", "impact", "REQ-AUTH-001", cwd=str(repo))
    assert len(imp["files"]) == 5
    assert "5 file(s) to revisit." in cli.ok("trace", "impact", "REQ-AUTH-001", cwd=str(repo)).out
    gaps = cli.js("trace", "gaps", cwd=str(repo))
    assert [x["id"] for x in gaps["dangling"]] == ["REQ-NOPE-001", "TASK-999", "REQ-AUTH-999"]
    out = cli.ok("trace", "gaps", cwd=str(repo)).out
    assert "REQ-NOPE-001" in out and "src/dangling.py:1" in out
    bad = cli.fails(1, "trace", "show", "REQ-AUTH-01", cwd=str(repo))
    assert "Did you mean REQ-AUTH-001" in bad.err


def test_check_exit_codes(cli: Cli, repo: Path) -> None:
    ok = cli.js("trace", "check", "--min-coverage", "60", cwd=str(repo))
    assert ok["ok"] is True and ok["coverage"] == 64.3
    r = cli("trace", "check", "--min-coverage", "70", cwd=str(repo))
    assert r.rc == 1 and "FAILED" in r.out
    r = cli("trace", "check", "--min-coverage", "20", "--deep", "--json", cwd=str(repo))
    assert r.rc == 0 and r.json()["mode"] == "deep"
    cli.fails(2, "trace", "check", "--min-coverage", "120", cwd=str(repo))


def test_export_to_files(cli: Cli, repo: Path, tmp_path: Path) -> None:
    for fmt in ("json", "csv", "md", "html"):
        out = tmp_path / f"t.{fmt}"
        res = cli.js("trace", "export", "--format", fmt, "-o", str(out), cwd=str(repo))
        assert res["path"] == str(out) and out.stat().st_size == res["bytes"]
    assert json.loads((tmp_path / "t.json").read_text())["summary"]["grade"] == "D"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text())))
    assert {r["id"]: r["code"] for r in rows}["REQ-BILL-002"] == "src/latin1.c:2"
    assert (tmp_path / "t.html").read_text().startswith("<!DOCTYPE html>")
    stdout = cli.ok("trace", "export", "--format", "md", cwd=str(repo)).out
    assert stdout.startswith("# Traceability matrix")
    cli.fails(2, "trace", "export", "--format", "csv", "-o", str(tmp_path / "no" / "dir" / "x.csv"), cwd=str(repo))
    # The export rules (docs/api.md#export-files): no overwrite without --force, nothing inside the home.
    before = (tmp_path / "t.csv").read_text()
    assert "--force" in cli.fails(2, "trace", "export", "--format", "csv", "-o", str(tmp_path / "t.csv"), cwd=str(repo)).err
    cli.ok("trace", "export", "--format", "json", "-o", str(tmp_path / "t.csv"), "--force", cwd=str(repo))
    assert (tmp_path / "t.csv").read_text() != before
    journal = cli.paths.journal
    r = cli.fails(2, "trace", "export", "--format", "csv", "-o", str(journal), "--force", cwd=str(repo))
    assert "inside MUSUBI_HOME" in r.err


def test_review_and_accept(cli: Cli, repo: Path) -> None:
    r = cli.js("trace", "review", "REQ-AUTH-001", cwd=str(repo))
    assert r["was_suspect"] is False and (repo / "storage/traceability/links.yml").exists()
    spec = repo / "storage/specs/auth.md"
    spec.write_text(spec.read_text().replace("30 minutes", "5 minutes"))
    assert "⚠ suspect" in cli.ok("trace", cwd=str(repo)).out
    assert cli.js("trace", "review", "REQ-AUTH-001", cwd=str(repo))["was_suspect"] is True
    acc = cli.js("trace", "accept", "REQ-CRLF-001", "src/crlf.py:3", cwd=str(repo))
    assert (acc["target"], acc["line"], acc["state"]) == ("src/crlf.py", 3, "accepted")
    rej = cli.js("trace", "accept", "REQ-CRLF-001", "TASK-003", "--kind", "task", "--reject", cwd=str(repo))
    assert rej["state"] == "rejected"
    cli.fails(2, "trace", "accept", "REQ-CRLF-001", "/etc/passwd", cwd=str(repo))


def test_spec_lint(cli: Cli, repo: Path) -> None:
    r = cli("spec", "lint", "--json", cwd=str(repo))
    assert r.rc == 1
    d = r.json()
    assert [(f["rule"], f["path"], f["line"]) for f in d["findings"]] == [
        ("req.no-acceptance-criteria", ".kiro/specs/billing/requirements.md", 21),
        ("ref.unknown-id", "storage/design/auth-design.md", 13),
    ]
    (repo / "storage/design/auth-design.md").write_text("# Design\n\n## ADR-001: Tokens\n\nREQ-AUTH-001\n")
    r = cli("spec", "lint", str(repo))
    assert r.rc == 0 and "0 error(s), 1 warning(s)" in r.out
    assert cli("spec", "lint", str(repo), "--strict").rc == 1
    cli.fails(2, "spec", "lint", str(repo / "missing"))


# -- layouts, nothing recognised, grouped gaps, positional export PATH -----------------------------


def _nothing_recognised_repo(root: Path) -> Path:
    """Spec files in the Kiro places and a configured glob, none of them holding a recognisable requirement."""
    files = {
        ".kiro/specs/login/requirements.md": "# Requirements\n\n## Login\n\nUsers log in with a password.\n",
        ".kiro/specs/billing/requirements.md": "# Requirements\n\n## Invoices\n\n- The system sends invoices.\n",
        "docs/reqs/notes.md": "# Notes\n\nNothing formal yet.\n",
        "musubi.toml": '[trace]\nrequirements = ["docs/reqs/*.md"]\n',
        "src/app.py": "X = 1\n",
    }
    return _write(root, files)


def test_check_and_lint_fail_when_spec_files_hold_no_recognised_requirement(cli: Cli, tmp_path: Path) -> None:
    root = _nothing_recognised_repo(tmp_path / "r")
    files = [".kiro/specs/billing/requirements.md", ".kiro/specs/login/requirements.md", "docs/reqs/notes.md"]
    r = cli("trace", "check", "--min-coverage", "0", str(root))
    assert r.rc == 1 and r.out.startswith("FAILED: 3 spec file(s) found (")
    for needle in (*files, "no requirement was recognised", "likely layout: kiro", "'### Requirement N'",
                   "requirement_pattern", "'- **FR-001**: …'", "docs/reqs/*.md", "To fix:"):
        assert needle in r.out, needle
    d = cli("trace", "check", "--min-coverage", "0", "--json", str(root))
    assert d.rc == 1
    j = d.json()
    assert j["ok"] is False and j["reason"] == j["diagnosis"]["message"]
    assert sorted(j["diagnosis"]["spec_files"]) == files and j["diagnosis"]["likely_layout"] == "kiro"
    assert "docs/reqs/*.md" in j["diagnosis"]["globs"]

    lint = cli("spec", "lint", str(root), "--json")
    assert lint.rc == 1
    lj = lint.json()
    assert (lj["requirements"], lj["spec_files"], lj["errors"]) == (0, 3, 1)
    assert [f["rule"] for f in lj["findings"]] == ["spec.nothing-recognised"]
    human = cli("spec", "lint", str(root))
    assert human.rc == 1 and "spec.nothing-recognised" in human.out and "no findings" not in human.out
    assert "0 requirement(s) in 3 spec file(s): 1 error(s)" in human.out

    # Reading views say it too, without failing (they are not checks).
    gaps = cli("trace", "gaps", str(root))
    assert gaps.rc == 0 and "no requirement was recognised" in gaps.err and "likely layout: kiro" in gaps.err
    matrix = cli("trace", str(root))
    assert matrix.rc == 0 and "no requirement was recognised" in matrix.out


def test_check_fails_without_any_spec_file(cli: Cli, tmp_path: Path) -> None:
    root = _write(tmp_path / "empty", {"src/app.py": "X = 1\n"})
    r = cli("trace", "check", "--min-coverage", "0", str(root))
    assert r.rc == 1 and "FAILED: no spec files found (looked in storage/specs" in r.out
    ok = cli("spec", "lint", str(root))  # nothing to lint is not an error finding
    assert ok.rc == 0 and "no requirements found: nothing was linted." in ok.out


def test_gaps_grouped_by_folder_and_file(cli: Cli, repo: Path) -> None:
    fixtures = repo / "tests" / "fixtures"
    fixtures.mkdir(parents=True)
    # Comments in fixtures count; the string literal is sample data (not a dangling reference).
    (fixtures / "old_a.py").write_text("# REQ-OLD-001\n# REQ-OLD-002\n# REQ-OLD-001 again\nX = 'REQ-OLD-009'\n")
    (fixtures / "old_b.py").write_text("# REQ-OLD-003\n")
    d = cli.js("trace", "gaps", "--group", str(repo))
    by_file = {g["path"]: (g["count"], g["ids"]) for g in d["dangling_by_file"]}
    assert by_file["tests/fixtures/old_a.py"] == (3, ["REQ-OLD-001", "REQ-OLD-002"])
    assert by_file["tests/fixtures/old_b.py"] == (1, ["REQ-OLD-003"])
    by_folder = {g["path"]: g["count"] for g in d["dangling_by_folder"]}
    assert by_folder["tests/fixtures"] == 4
    assert d["dangling_by_folder"][0]["path"] == "tests/fixtures"  # the noisiest folder first
    assert "REQ-OLD-009" not in {x["id"] for x in d["dangling"]}
    out = cli.ok("trace", "gaps", "--group", cwd=str(repo)).out
    assert "dangling references by folder" in out and "dangling references by file" in out
    assert "dangling references (ID defined nowhere)" not in out  # grouped instead of listed
    row = next(ln for ln in out.splitlines() if ln.startswith("tests/fixtures "))
    assert row.split()[1] == "4"
    listed = cli.ok("trace", "gaps", cwd=str(repo)).out
    assert "dangling references (ID defined nowhere)" in listed and "tests/fixtures/old_a.py:1" in listed


def test_export_takes_a_positional_path(cli: Cli, repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "t.csv"
    res = cli.js("trace", "export", str(repo), "--format", "csv", "-o", str(out), cwd=str(elsewhere))
    assert res["path"] == str(out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["id"] for r in rows} >= {"REQ-AUTH-001", "REQ-BILL-002"}
    md = cli.ok("trace", "export", "--format", "md", str(repo), cwd=str(elsewhere)).out
    assert md.startswith("# Traceability matrix") and "REQ-AUTH-001" in md
    assert cli.ok("trace", "export", "--format", "md", cwd=str(repo)).out == md  # same repository either way
    bad = cli.fails(2, "trace", "export", str(tmp_path / "missing"), "--format", "md", cwd=str(elsewhere))
    assert "missing" in bad.err


def test_trace_json_reports_the_layout_of_each_folder(cli: Cli, tmp_path: Path) -> None:
    root = _write(tmp_path / "mixed", {**KIRO, **SPECKIT, **MUSUBI})
    d = cli.js("trace", str(root))
    lays = {x["folder"]: x["layout"] for x in d["scan"]["layouts"]}
    assert lays == {
        ".kiro/specs/auth": "kiro", ".kiro/specs/billing": "kiro",
        "specs/001-albums": "speckit", "specs/002-sharing": "speckit",
        "storage": "musubi",
    }
    ids = [r["id"] for r in d["requirements"]]
    assert {"auth:1", "billing:1", "001-albums:FR-001", "002-sharing:FR-001", "REQ-PROMPT-001"} <= set(ids)
    human = cli.ok("trace", str(root)).out
    assert "layouts: " in human and ".kiro/specs/billing kiro" in human and "specs/001-albums speckit" in human
