"""Pure parts: git-apply semantics on real diffs of this repository's history, and the stuck detector."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.orchestration import gitapply
from core.orchestration.stuck import StuckDetector

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def _real_change() -> tuple[str, str, str, str]:
    """A real edit from this repository's history: (path, old text, new text, its unified diff)."""
    for sha in _git("log", "--format=%H", "-n", "40", "--", "core/").split():
        for path in _git("diff", "--name-only", f"{sha}^", sha, "--", "core/").split():
            if not path.endswith(".py"):
                continue
            try:
                old = _git("show", f"{sha}^:{path}")
                new = _git("show", f"{sha}:{path}")
            except subprocess.CalledProcessError:
                continue  # created or deleted there
            diff = _git("diff", f"{sha}^", sha, "--", path)
            if diff and old != new:
                return path, old, new, diff
    pytest.skip("no edited file in the recent history")


def test_a_real_diff_from_history_applies_like_git(tmp_path: Path) -> None:
    path, old, new, diff = _real_change()
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(old)
    writes = gitapply.apply(tmp_path, diff)
    assert target.read_text() == new
    assert [w.path for w in writes] == [path]
    # Applying it again conflicts, and git agrees.
    with pytest.raises(gitapply.ApplyRefused):
        gitapply.apply(tmp_path, diff)
    chk = subprocess.run(["git", "apply", "--check", "-"], input=diff, text=True, cwd=tmp_path, capture_output=True)
    assert chk.returncode != 0


def test_create_delete_and_a_conflict_in_the_second_file_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("x\n")
    patch = ("--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"
             "--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-not what is there\n+y\n")
    with pytest.raises(gitapply.ApplyRefused, match="b.txt"):
        gitapply.apply(tmp_path, patch)
    assert (tmp_path / "a.txt").read_text() == "one\ntwo\n"  # all or nothing
    ok = ("--- /dev/null\n+++ b/new/c.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
          "--- a/b.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    gitapply.apply(tmp_path, ok)
    assert (tmp_path / "new" / "c.txt").read_text() == "hello\nworld\n" and not (tmp_path / "b.txt").exists()
    with pytest.raises(gitapply.ApplyRefused, match="already exists"):
        gitapply.apply(tmp_path, "--- /dev/null\n+++ b/new/c.txt\n@@ -0,0 +1 @@\n+again\n")


def test_paths_outside_the_root_are_refused_symlinks_included(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    for bad in ("../x.txt", "/etc/x.txt", "link/x.txt"):
        with pytest.raises(gitapply.ApplyRefused, match="outside the project root"):
            gitapply.apply(root, f"--- /dev/null\n+++ b/{bad}\n@@ -0,0 +1 @@\n+x\n".replace("b//", "/"))
    assert list(outside.iterdir()) == []
    with pytest.raises(gitapply.ApplyRefused, match="not a unified diff"):
        gitapply.apply(root, "just some text")


def test_stuck_detector_repeats_and_alternations_per_step() -> None:
    s = StuckDetector()
    assert s.observe("1", "a") is None and s.observe("2", "a") is None  # other step: not a repeat
    assert s.observe("1", "a \n") is not None  # whitespace does not hide a repeat
    s = StuckDetector()
    assert [s.observe("1", x) for x in ("A", "B", "A")] == [None, None, None]
    assert "alternated" in (s.observe("1", "B") or "")
    s = StuckDetector()
    assert all(s.observe("1", x) is None for x in ("A", "B", "C", "A", "B", "C"))
