"""Find the repository a client means: the nearest folder that looks like one (stdlib only)."""

from __future__ import annotations

from pathlib import Path

MARKERS = (".git", "musubi.toml", ".kiro", "storage/specs")


def find_repo_root(start: str) -> str | None:
    """The nearest folder at or above ``start`` holding ``.git``, ``musubi.toml``, ``.kiro`` or ``storage/specs``."""
    try:
        p = Path(start).resolve()
    except OSError:
        return None
    for d in (p, *p.parents):
        if any((d / m).exists() for m in MARKERS):
            return str(d)
    return None
