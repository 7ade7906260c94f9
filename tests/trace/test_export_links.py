"""Exports parsed back; links.yml reviews (suspect links) and accepted/rejected links; incremental re-scan."""

from __future__ import annotations

import csv
import io
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from core.errors import BadRequest, NotFound
from core.trace.export import render
from core.trace.links import LinksFile
from core.trace.matrix import build
from core.trace.scanner import CACHE_VERSION, Scanner, scan
from core.trace.service import TraceService


def _expected_cells(report: dict) -> dict[str, dict[str, list[str]]]:
    out = {}
    for r in report["requirements"]:
        out[r["id"]] = {
            "design": sorted({lk["target"] for lk in r["links"]["design"]}),
            "tasks": sorted({lk["target"] for lk in r["links"]["tasks"]}),
            "code": sorted({f"{lk['path']}:{lk['line']}" for lk in r["links"]["code"]}),
            "tests": sorted({f"{lk['path']}:{lk['line']}" for lk in r["links"]["tests"]}),
        }
    return out


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._t: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self.external = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._t = a.get("id") or ""
            self.tables[self._t] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag in ("link", "script", "img") or (tag == "a" and a.get("href", "").startswith("http")):
            self.external = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._t is not None:
            self.tables[self._t].append(self._row)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_exports_parse_back(repo: Path) -> None:
    report = build(scan(repo)).to_json()
    expected = _expected_cells(report)

    back = json.loads(render(report, "json"))
    assert back == json.loads(json.dumps(report))

    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert [r["id"] for r in rows] == list(expected)
    for r in rows:
        for c in ("design", "tasks", "code", "tests"):
            assert sorted(x for x in r[c].split("; ") if x) == expected[r["id"]][c]
    assert {r["id"]: r["has_code"] for r in rows}["REQ-CRLF-001"] == "no"

    md = render(report, "md")
    matrix_part = md.split("\n## ")[0]
    table = [ln for ln in matrix_part.splitlines() if ln.startswith("| REQ-")]
    assert "## Dangling references" in md and "| REQ-NOPE-001 | src/dangling.py:1 | code |" in md
    assert len(table) == len(expected)
    for ln in table:
        cells = [c.strip() for c in ln.strip("|").split(" | ")]
        rid = cells[0]
        for i, c in enumerate(("design", "tasks", "code", "tests")):
            got = [] if cells[4 + i] == "—" else sorted(cells[4 + i].split("<br>"))
            assert got == expected[rid][c], (rid, c)

    p = _Tables()
    p.feed(render(report, "html"))
    assert not p.external  # one self-contained file
    matrix = p.tables["matrix"][1:]
    assert [r[0] for r in matrix] == list(expected)
    for r in matrix:
        for i, c in enumerate(("design", "tasks", "code", "tests")):
            cell = r[4 + i]
            got = [] if not cell.strip() else sorted(cell.split("\n"))
            assert got == expected[r[0]][c], (r[0], c)
    assert [r[0] for r in p.tables["dangling"][1:]] == ["REQ-NOPE-001", "TASK-999", "REQ-AUTH-999"]
    assert "@media print" in render(report, "html")
    with pytest.raises(BadRequest):
        render(report, "pdf")


def test_review_makes_suspect_links_and_clears_them(repo: Path) -> None:
    svc = TraceService()
    r = svc.review("default", repo, "REQ-AUTH-001", "alice")
    assert r["previous_fingerprint"] is None and r["by"] == "alice"
    doc = yaml.safe_load((repo / "storage/traceability/links.yml").read_text())
    assert doc["reviews"]["REQ-AUTH-001"]["fingerprint"] == r["fingerprint"]

    t = svc.trace("default", repo)
    assert not t.rows["REQ-AUTH-001"].suspect and t.rows["REQ-AUTH-001"].reviewed

    # Whitespace and line endings alone do not change the fingerprint...
    spec = repo / "storage/specs/auth.md"
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n").replace(b"a session token", b"a  session\ttoken"))
    assert not svc.trace("default", repo).rows["REQ-AUTH-001"].suspect
    # ...a change of meaning does: every downstream link becomes suspect until reviewed.
    spec.write_text(spec.read_text().replace("30 minutes", "10 minutes"))
    row = svc.trace("default", repo).rows["REQ-AUTH-001"]
    assert row.suspect
    states = {lk.state for c in row.links.values() for lk in c}
    assert states == {"suspect"}
    assert row.shallow == {"design": True, "tasks": True, "code": True, "tests": True}  # still linked, flagged
    assert svc.trace("default", repo).summary()["suspect"] == 1
    again = svc.review("default", repo, "REQ-AUTH-001", "bob")
    assert again["was_suspect"] and again["previous_fingerprint"] == r["fingerprint"]
    assert not svc.trace("default", repo).rows["REQ-AUTH-001"].suspect


def test_accepted_and_rejected_links(repo: Path) -> None:
    svc = TraceService()
    t0 = svc.trace("default", repo)
    assert not t0.rows["REQ-CRLF-001"].shallow["code"]
    svc.decide_link("default", repo, "REQ-CRLF-001", "code", "src/crlf.py", 1, "accepted", "manual", "alice")
    svc.decide_link("default", repo, "REQ-CRLF-001", "test", "tests/test_login.py", None, "rejected", "suggested", "alice")
    svc.decide_link("default", repo, "REQ-CRLF-001", "task", "TASK-003", None, "accepted", "manual", "alice")
    t = svc.trace("default", repo)
    row = t.rows["REQ-CRLF-001"]
    assert [(lk.path, lk.line, lk.source, lk.state) for lk in row.links["code"]] == [("src/crlf.py", 1, "manual", "accepted")]
    assert row.links["tests"] == [] and not row.shallow["tests"]
    assert [(lk.target, lk.path, lk.state) for lk in row.links["tasks"]] == [("TASK-003", "storage/tasks/auth-tasks.md", "accepted")]
    assert [(lk.path, lk.source, lk.state) for lk in t.rejected] == [("tests/test_login.py", "suggested", "rejected")]
    assert row.shallow["code"] and row.shallow["tasks"]
    lf = LinksFile.load(repo)
    assert len(lf.links) == 3
    # A new decision on the same link replaces the old one.
    svc.decide_link("default", repo, "REQ-CRLF-001", "code", "src/crlf.py", 1, "rejected", "manual", "bob")
    assert [(x.state, x.by) for x in LinksFile.load(repo).links if x.kind == "code"] == [("rejected", "bob")]
    svc.remove_link("default", repo, "REQ-CRLF-001", "code", "src/crlf.py", 1)
    assert len(LinksFile.load(repo).links) == 2
    with pytest.raises(NotFound):
        svc.remove_link("default", repo, "REQ-CRLF-001", "code", "src/crlf.py", 1)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("REQ-NONE-001", "code", "src/crlf.py", None, "accepted", "manual"), "no requirement"),
        (("REQ-CRLF-001", "binary", "src/crlf.py", None, "accepted", "manual"), "link kind"),
        (("REQ-CRLF-001", "code", "/etc/passwd", None, "accepted", "manual"), "repository-relative"),
        (("REQ-CRLF-001", "code", "../x.py", None, "accepted", "manual"), "repository-relative"),
        (("REQ-CRLF-001", "code", "src/nope.py", None, "accepted", "manual"), "not a file"),
        (("REQ-CRLF-001", "code", "src/crlf.py", 0, "accepted", "manual"), "positive integer"),
        (("REQ-CRLF-001", "code", "src/crlf.py", None, "maybe", "manual"), "link state"),
        (("REQ-CRLF-001", "task", "TASK-404", None, "accepted", "manual"), "no design element or task"),
    ],
)
def test_bad_link_decisions_change_nothing(repo: Path, args: tuple, needle: str) -> None:
    svc = TraceService()
    with pytest.raises((BadRequest, NotFound)) as ei:
        svc.decide_link("default", repo, *args, "alice")
    assert needle in ei.value.message
    assert not (repo / "storage/traceability/links.yml").exists()


def test_unknown_requirement_suggests_close_ids(repo: Path) -> None:
    with pytest.raises(NotFound) as ei:
        TraceService().show("default", repo, "REQ-AUTH-01")
    assert "REQ-AUTH-001" in ei.value.message


def test_corrupt_links_file_is_named(repo: Path) -> None:
    p = repo / "storage/traceability/links.yml"
    p.parent.mkdir(parents=True)
    p.write_text("links: [ {requirement: REQ-AUTH-001, kind: code} ]\n")
    with pytest.raises(BadRequest) as ei:
        TraceService().trace("default", repo)
    assert "links.yml" in ei.value.message and "'target'" in ei.value.message
    p.write_text("links: [\n")
    with pytest.raises(BadRequest, match="not valid YAML"):
        TraceService().trace("default", repo)


def test_incremental_rescan_reads_only_changed_files(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "c.json"
    sc = Scanner(repo, cache)
    first = sc.scan()
    assert first.read == first.parsed > 0
    second = sc.scan()
    assert (second.read, second.parsed) == (0, 0)

    login = repo / "src/auth/login.py"
    st = login.stat()
    os.utime(login, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same bytes
    third = sc.scan()
    assert (third.read, third.parsed) == (1, 0)

    login.write_text(login.read_text() + "# REQ-CRLF-001\n")
    fourth = sc.scan()
    assert (fourth.read, fourth.parsed) == (1, 1)
    assert ("REQ-CRLF-001", 12, "comment") in fourth.code["src/auth/login.py"]

    # Small changes reach the cache file a little later (flush() is what the timer calls);
    # a new scanner on it then starts warm, with the same results as a cold scan.
    stale = Scanner(repo, cache).scan()
    assert (stale.read, stale.parsed) == (1, 1)
    sc.flush()
    warm = Scanner(repo, cache).scan()
    assert (warm.read, warm.parsed) == (0, 0)
    assert build(warm).to_json()["requirements"] == build(scan(repo)).to_json()["requirements"]

    # Deleting a file drops its links; a config change invalidates the cache.
    (repo / "src/crlf.py").unlink()
    assert "src/crlf.py" not in sc.scan().code
    (repo / "musubi.toml").write_text('[trace]\nexclude = ["vendor/**"]\nmax_file_bytes = 1000000\n')
    after = sc.scan()
    assert after.parsed == after.read and "src/huge.js" in after.code


def test_damaged_cache_costs_only_a_full_scan(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.json"
    cache.write_text("{not json")
    s = Scanner(repo, cache).scan()
    assert s.parsed > 0 and json.loads(cache.read_text())["version"] == CACHE_VERSION


@pytest.mark.parametrize("git", [True, False])
def test_file_names_that_are_not_utf8(tmp_path: Path, git: bool) -> None:
    import subprocess

    root = tmp_path / "r"
    root.mkdir()
    (root / "ok.py").write_text("# REQ-A-001\n")
    bad = os.path.join(os.fsencode(root), b"caf\xe9.py")
    with open(bad, "wb") as f:
        f.write(b"# REQ-A-002\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    s = scan(root)
    assert s.code == {"ok.py": [("REQ-A-001", 1, "comment")]}
    assert s.skipped == {"caf\ufffd.py": "file name is not UTF-8"}
    json.dumps(build(s).to_json(), ensure_ascii=False).encode("utf-8")  # the report travels as UTF-8


def test_concurrent_link_decisions_all_land(repo: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    svc = TraceService()
    svc.trace("default", repo)
    lines = range(1, 5)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: svc.decide_link("default", repo, "REQ-CRLF-001", "code", "src/crlf.py", n,
                                                "accepted", "manual", "alice"), lines))
    assert sorted(lk.line or 0 for lk in LinksFile.load(repo).links) == list(lines)
