"""Which files a repository holds, and reading them safely.

In a git work tree the list is ``git ls-files --cached --others --exclude-standard``
(tracked files plus new ones .gitignore does not exclude).  Elsewhere a walk that
honours every ``.gitignore`` it meets (via ``pathspec``) stands in.  Symlinks
are never followed: a tracked link's target is scanned where it lives, and a
link loop cannot trap the walk.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

from core.errors import BadRequest

BINARY_SNIFF = 8192
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class FileStat:
    """What decides whether a file must be read again."""

    size: int
    mtime_ns: int


def is_git_worktree(root: Path) -> bool:
    return (root / ".git").exists()


def _git_files(root: Path) -> list[str] | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    # Paths come as bytes; surrogateescape keeps a non-UTF-8 file name round-trippable.
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


def _walk_files(root: Path) -> list[str]:
    """All files under ``root`` that the .gitignore files met on the way do not exclude."""
    out: list[str] = []
    # Each stack entry: (relative dir, [(spec dir prefix, spec), ...] in force there).
    stack: list[tuple[str, list[tuple[str, pathspec.PathSpec]]]] = [("", [])]
    while stack:
        rel, specs = stack.pop()
        d = root / rel if rel else root
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        names = {e.name for e in entries}
        if ".gitignore" in names:
            try:
                lines = (d / ".gitignore").read_text("utf-8", "replace").splitlines()
                specs = [*specs, (rel, pathspec.GitIgnoreSpec.from_lines(lines))]
            except OSError:
                pass
        for e in entries:
            if e.name == ".git":
                continue
            path = f"{rel}/{e.name}" if rel else e.name
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            probe = path + "/" if is_dir else path
            if any(spec.match_file(probe[len(base) + 1 :] if base else probe) for base, spec in specs):
                continue
            if is_dir:
                stack.append((path, specs))
            else:
                out.append(path)
    out.sort()
    return out


def list_files(root: Path) -> tuple[list[str], str]:
    """Repository-relative paths of every file to consider, and how they were listed."""
    if not root.is_dir():
        raise BadRequest(f"{root} is not a directory; give the path of a repository.", field="path")
    if is_git_worktree(root):
        files = _git_files(root)
        if files is not None:
            return files, "git"
    return _walk_files(root), "walk"


def filter_files(files: Iterable[str], exclude: list[str]) -> list[str]:
    if not exclude:
        return list(files)
    spec = pathspec.GitIgnoreSpec.from_lines(exclude)
    return [f for f in files if not spec.match_file(f)]


def read_bytes(path: str, size: int) -> bytes | str:
    """The file's bytes, or why not.  O_NOFOLLOW: a file swapped for a link since stat is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    try:
        chunks = []
        want = size + 1
        while want > 0:
            b = os.read(fd, want)
            if not b:
                break
            chunks.append(b)
            want -= len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def is_binary(data: bytes) -> bool:
    """Git's rule: a NUL byte early in the file means binary."""
    return data.find(b"\0", 0, BINARY_SNIFF) >= 0


def decode(data: bytes) -> str:
    """Text of a file in any encoding: UTF-8 (BOM dropped), undecodable bytes replaced."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "replace")


def validate_root(path: str) -> Path:
    """An absolute, existing directory, resolved."""
    if not path or not os.path.isabs(path):
        raise BadRequest(f"repository path {path!r} must be an absolute path to a directory.", field="path")
    p = Path(path).resolve()
    if not p.is_dir():
        raise BadRequest(f"repository path {path!r} is not an existing directory.", field="path")
    return p
