"""``musubi trace`` and ``musubi spec lint``: the real command in a subprocess against a real engine."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli.helpers import Cli


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
