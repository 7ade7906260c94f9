"""What ``python -m tui.remote`` (the TUI of one remote session) may do beyond the engine: very little."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import exports
from core.errors import BadRequest
from tui import editor
from tui.remote import read_token, user_folder


@pytest.fixture
def confined(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "home" / "exports" / "remote" / user_folder("mia")
    exports.confine(folder)
    try:
        yield folder
    finally:
        exports._confined = None


def test_exports_of_a_remote_session_stay_in_its_folder(confined: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (os.stat(confined).st_mode & 0o777) == 0o700
    assert exports.write_export(str(confined / "audit.jsonl"), home, "{}\n") == str(confined / "audit.jsonl")
    victim = tmp_path / "authorized_keys"
    victim.write_text("keep me\n")
    for target in (victim, tmp_path / "new.csv", confined / ".." / "x.csv"):
        with pytest.raises(BadRequest) as e:
            exports.write_export(str(target), home, "boom\n", force=True)
        assert e.value.code == "export_outside_remote", target
    assert victim.read_text() == "keep me\n"


def test_user_folders_are_distinct_and_never_dots() -> None:
    names = {user_folder(u) for u in ("mia", "mi.a", "mi_a", "..", ".")}
    assert len(names) == 5 and not any(n.startswith(".") for n in names)


def test_the_token_comes_once_from_the_pipe() -> None:
    r, w = os.pipe()
    os.write(w, b"mst_abc\n")
    os.close(w)
    assert read_token(r) == "mst_abc"
    with pytest.raises(OSError):
        os.fstat(r)  # closed after reading
    r, w = os.pipe()
    os.write(w, b"AKIA-not-a-session")
    os.close(w)
    with pytest.raises(SystemExit, match="no session token"):
        read_token(r)
    with pytest.raises(SystemExit, match="cannot read the session token"):
        read_token(9999)


def test_editors_are_off_in_a_remote_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(editor, "REMOTE", True)
    problem = editor.run_in_terminal(object(), ["vi", "+3", "/etc/passwd"])
    assert problem is not None and "Editors are off in a remote session" in problem.message
