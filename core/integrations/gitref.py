"""The branch and commit a repository's work tree is at, read from its ``.git`` files (no git binary).

What a run records when it starts (``run_refs``), so the Dashboard can show the CI pipeline of
that ref.  Handles a ``.git`` folder or a ``.git`` file (``gitdir: ...``, worktrees and
submodules), loose and packed refs, and a detached HEAD (no branch: the commit is the ref).
Anything unreadable answers None: a run outside a git repository simply records no ref.
"""

from __future__ import annotations

import re
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _git_dir(root: Path) -> Path | None:
    dot = root / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        line = dot.read_text("utf-8", "replace").strip()
        if line.startswith("gitdir:"):
            d = Path(line[len("gitdir:"):].strip())
            return d if d.is_absolute() else (root / d).resolve()
    return None


def _common(git: Path) -> Path:
    """A worktree's refs live in the main repository (``commondir``)."""
    f = git / "commondir"
    if f.is_file():
        d = Path(f.read_text("utf-8", "replace").strip())
        return d if d.is_absolute() else (git / d).resolve()
    return git


def _resolve(git: Path, ref: str) -> str | None:
    for base in dict.fromkeys((git, _common(git))):
        loose = base / ref
        if loose.is_file():
            sha = loose.read_text("utf-8", "replace").strip()
            return sha if _SHA.match(sha) else None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text("utf-8", "replace").splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and parts[1].strip() == ref and _SHA.match(parts[0]):
                    return parts[0]
    return None


def head(root: Path) -> tuple[str, str | None] | None:
    """(branch or commit, commit or None) of ``root``'s work tree; None when it is no git repository."""
    try:
        git = _git_dir(root)
        if git is None:
            return None
        raw = (git / "HEAD").read_text("utf-8", "replace").strip()
        if raw.startswith("ref:"):
            ref = raw[4:].strip()
            branch = ref.removeprefix("refs/heads/")
            return branch, _resolve(git, ref)  # None: a branch with no commit yet
        return (raw, raw) if _SHA.match(raw) else None
    except OSError:
        return None
