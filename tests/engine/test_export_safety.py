"""Exports write only where they should (issue 9, item 4 and the export existence oracle of item 9).

The engine streams export content and the client writes the file: never inside
``$MUSUBI_HOME`` (but its ``exports/`` folder), never over an existing file
without ``--force``, never through a symbolic link.  Each destructive probe is
followed by a restart that must find the home intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import BadRequest, PermissionDenied
from core.exports import (
    ExportFile,
    check_destination,
    export_audit,
    export_checkpoint,
    write_export,
)
from tests.cli.helpers import run_musubi

from .helpers import Home, poll


@pytest.fixture
def auditor(home: Home) -> Iterator[tuple[Home, str]]:
    """A private engine with a tenant whose member 'aud' is an auditor."""
    home.start()
    t = home.new_tenant("ex", {"aud": "auditor", "mem": "member"})
    yield home, t


def _musubi(h: Home, *args: str) -> tuple[int, str]:
    r = run_musubi(*args, home=str(h.dir))
    assert "Traceback" not in r.err + r.out, str(r)
    return r.rc, r.err + r.out


def test_auditor_cannot_overwrite_the_database(auditor: tuple[Home, str]) -> None:
    h, t = auditor
    db = h.paths.db
    h.client(t).post("/v1/audit/verify", {})
    before = db.stat().st_mtime_ns, db.stat().st_size
    rc, out = _musubi(h, "--tenant", t, "--as", "aud", "audit", "export", "--format", "jsonl", "-o", str(db))
    assert rc == 2 and "inside MUSUBI_HOME" in out, out
    rc, out = _musubi(h, "--tenant", t, "--as", "aud", "audit", "export", "--format", "jsonl", "-o", str(db), "--force")
    assert rc == 2 and "inside MUSUBI_HOME" in out, out
    assert (db.stat().st_mtime_ns, db.stat().st_size) == before
    # Restart: the database is whole and the chain verifies.
    h.stop()
    h.start()
    assert h.client(t).post("/v1/audit/verify", {})["ok"] is True


def test_checkpoint_export_over_the_journal_is_refused_and_kill9_loses_nothing(auditor: tuple[Home, str]) -> None:
    h, t = auditor
    c = h.client(t)
    for i in range(50):
        c.post("/v1/usage", {"model": "m", "input_tokens": i + 1})
    with pytest.raises(BadRequest) as ei:
        export_checkpoint(h.client(t, as_user="aud"), str(h.paths.journal), force=True)
    assert ei.value.code == "export_inside_home"
    for i in range(50):
        c.post("/v1/usage", {"model": "m", "input_tokens": 1000 + i})
    h.kill9()
    h.start()
    assert len(h.audit(t, action="usage.record")) == 100  # every acknowledged write survived
    assert h.client(t).post("/v1/audit/verify", {})["ok"] is True


@pytest.mark.parametrize(
    "name",
    ["journal.wal", "audit-signing.key", "engine.pid", "logs/engine.log", "tenants/x.json", "."],
)
def test_nothing_inside_the_home_but_its_exports_folder(
    auditor: tuple[Home, str], name: str
) -> None:
    h, t = auditor
    with pytest.raises(BadRequest) as ei:
        check_destination(str(h.dir / name), h.dir, force=True)
    assert ei.value.code in ("export_inside_home", "export_is_folder")
    r = export_audit(h.client(t, as_user="aud"), "csv", {}, str(h.paths.exports / "a.csv"))
    assert Path(r["path"]).read_text().startswith("tenant_id,seq")
    assert (h.paths.exports / "a.csv").stat().st_mode & 0o077 == 0  # audit exports are private


def test_a_symlinked_folder_into_the_home_is_caught(auditor: tuple[Home, str], tmp_path: Path) -> None:
    h, t = auditor
    (tmp_path / "innocent").symlink_to(h.dir)
    rc, out = _musubi(
        h,
        "--tenant",
        t,
        "audit",
        "export",
        "--format",
        "jsonl",
        "-o",
        str(tmp_path / "innocent" / "journal.wal"),
    )
    assert rc == 2 and "inside MUSUBI_HOME" in out


def test_never_over_an_existing_file_unless_force(auditor: tuple[Home, str], tmp_path: Path) -> None:
    h, t = auditor
    out = tmp_path / "a.jsonl"
    out.write_text("keep me\n")
    rc, msg = _musubi(h, "--tenant", t, "audit", "export", "--format", "jsonl", "-o", str(out))
    assert rc == 2 and "--force" in msg and out.read_text() == "keep me\n"
    # A hard link to the old file keeps its content: --force replaces the name, never writes into it.
    (tmp_path / "hard").hardlink_to(out)
    rc, msg = _musubi(h, "--tenant", t, "--json", "audit", "export", "--format", "jsonl", "-o", str(out), "--force")
    assert rc == 0, msg
    lines = out.read_text().splitlines()
    assert lines and json.loads(lines[0])["tenant_id"] == t
    assert (tmp_path / "hard").read_text() == "keep me\n"


def test_never_through_a_symlink(auditor: tuple[Home, str], tmp_path: Path) -> None:
    h, t = auditor
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nothing-yet")
    for target in (link, dangling):
        for extra in ((), ("--force",)):
            rc, msg = _musubi(h, "--tenant", t, "audit", "export", "--format", "csv", "-o", str(target), *extra)
            assert rc == 2 and "symbolic link" in msg, msg
    assert victim.read_text() == "precious\n" and not (tmp_path / "nothing-yet").exists()
    with pytest.raises(BadRequest, match="symbolic link"):
        export_checkpoint(h.client(t), str(link), force=True)
    with pytest.raises(BadRequest, match="symbolic link"):
        write_export(str(link), h.dir, "x", force=True)
    assert victim.read_text() == "precious\n"


def test_the_engine_never_writes_the_destination(auditor: tuple[Home, str], tmp_path: Path) -> None:
    """Over the API the engine only streams: a destination in the body is a label, not a file it opens."""
    h, t = auditor
    dest = tmp_path / "engine-must-not-write.jsonl"
    status, body = h.raw("POST", "/v1/audit/export", {"format": "jsonl", "path": str(dest)}, tenant=t, as_user="aud")
    assert status == 200 and isinstance(body, str) and f'"tenant_id":"{t}"' in body.replace(" ", "")
    status, doc = h.raw("POST", "/v1/audit/checkpoint", {"path": str(dest)}, tenant=t, as_user="aud")
    assert status == 200 and doc["kind"] == "musubi.audit.checkpoint"
    assert not dest.exists()
    assert not any(h.paths.scratch.iterdir())  # the engine's scratch copy is gone once streamed
    last = h.audit(t, action="audit.export")[-1]
    assert last["actor"] == "aud" and last["details"]["path"] == str(dest) and last["details"]["events"] > 0


def test_refusals_do_not_depend_on_what_exists(auditor: tuple[Home, str], tmp_path: Path) -> None:
    """A member (no audit.export) gets the same audited 403 whether or not the folder exists."""
    h, t = auditor
    missing = tmp_path / "no-such-folder" / "x.jsonl"
    existing = tmp_path / "x.jsonl"
    denied_before = len(h.audit(t, outcome="denied"))
    answers = []
    for p in (missing, existing):
        rc, msg = _musubi(h, "--tenant", t, "--as", "mem", "audit", "export", "--format", "jsonl", "-o", str(p))
        answers.append((rc, msg.replace(str(p), "P")))
        rc, msg = _musubi(h, "--tenant", t, "--as", "mem", "audit", "checkpoint", "--export", str(p))
        answers.append((rc, msg.replace(str(p), "P")))
    assert {rc for rc, _ in answers} == {4}
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert len(h.audit(t, outcome="denied")) == denied_before + 4
    assert not existing.exists()
    with pytest.raises(PermissionDenied):
        export_audit(h.client(t, as_user="mem"), "jsonl", {}, str(missing))


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "race.txt"
    f = ExportFile(str(target), None)
    f.write(b"new content")
    target.write_text("someone else's")
    with pytest.raises(BadRequest, match="appeared"):
        f.commit()
    assert target.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["race.txt"]  # no temporary file left behind


def test_an_aborted_export_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "half.txt"
    with pytest.raises(RuntimeError), ExportFile(str(target), None) as f:
        f.write(b"half")
        raise RuntimeError("stream lost")
    assert list(tmp_path.iterdir()) == []


def test_scratch_leftovers_are_removed_at_start(home: Home) -> None:
    home.paths.ensure()
    home.paths.scratch.mkdir(mode=0o700)
    (home.paths.scratch / "old-export.parquet").write_bytes(b"x" * 10)
    home.start()
    poll(lambda: not any(home.paths.scratch.iterdir()))
    assert os.stat(home.paths.exports).st_mode & 0o077 == 0
