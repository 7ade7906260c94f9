"""Removing the vector folders that no longer serve search (light; file system only, no engine state).

A project's index folder, ``$MUSUBI_HOME/tenants/<tenant>/code/<project>/``, holds one vector
folder per model that has served it: ``vectors`` (the base model) and ``vectors-t<N>`` (tuned
version N, core/tune/service.py).  Once a switch has committed, the folders serving nothing are
removed in two steps, so a crash at any point leaves nothing the engine could take for a complete
index (docs/finetune.md, "Old vector folders"):

1. :func:`discard` renames the folder to ``.deleting-<name>-<random>``: one atomic rename, after
   which no code looks the folder up under its old name (a later activation of that version starts
   from an empty folder, as it always does);
2. :func:`purge` deletes every ``.deleting-*`` folder; one left by a crash is deleted at the next
   engine start or the next switch.

The engine decides which folders to keep (the serving one, and those a running job writes).
:func:`discard` and :func:`purge` also remove a deleted tuned version's folder,
``tuned/<project>/v<N>`` (``musubi tune delete``, :meth:`core.tune.service.TuneEmbedService.delete`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

TRASH_PREFIX = ".deleting-"
_VECTOR_NAME = re.compile(r"vectors(?:-t[1-9][0-9]*)?")

__all__ = ["TRASH_PREFIX", "discard", "folder_bytes", "purge", "stale"]


def stale(code_dir: Path, keep: set[str]) -> list[str]:
    """Names of the vector folders in ``code_dir`` that are not in ``keep`` (sorted; none if it is missing)."""
    try:
        names = [e.name for e in os.scandir(code_dir) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _VECTOR_NAME.fullmatch(n) and n not in keep)


def discard(code_dir: Path, name: str) -> Path | None:
    """Move ``code_dir/name`` out of the way under a trash name, durably; None when it is already gone."""
    trash = code_dir / f"{TRASH_PREFIX}{name}-{secrets.token_hex(4)}"
    try:
        os.rename(code_dir / name, trash)
    except FileNotFoundError:
        return None
    fd = os.open(code_dir, os.O_RDONLY)
    try:  # the rename must be on disk before the engine goes on as if the folder were gone
        os.fsync(fd)
    finally:
        os.close(fd)
    return trash


def purge(code_dir: Path) -> int:
    """Delete every trash folder in ``code_dir`` (also those an earlier crash left); returns the bytes freed."""
    try:
        trash = [Path(e.path) for e in os.scandir(code_dir) if e.name.startswith(TRASH_PREFIX)]
    except FileNotFoundError:
        return 0
    freed = 0
    for path in trash:
        freed += folder_bytes(path) or 0
        shutil.rmtree(path, ignore_errors=True)  # what stays (a permission problem) is tried again next time
    return freed


def folder_bytes(path: Path) -> int | None:
    """Bytes of the files under ``path`` (None when it does not exist)."""
    if not path.is_dir():
        return None
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:  # deleted while we looked
                continue
    return total
