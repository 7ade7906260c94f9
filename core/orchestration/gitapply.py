"""Apply a unified diff to a project the way ``git apply`` does: all or nothing, inside the root only.

``git apply`` semantics kept here: the whole patch is checked before any file is touched (every
hunk's context and removed lines must match the file, at the stated line or — like git — at
another offset when the context is unique there); a file to create must not exist, a file to
modify or delete must; paths are relative, without ``..``, and resolve (symlinks included) inside
the project root; nothing is written when any check fails.  Writes go to a temporary file in the
same folder, then ``os.replace``, so a crash leaves each file either old or new.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
MAX_PATCH_BYTES = 4 * 1024 * 1024


class ApplyRefused(Exception):
    """The patch does not apply (conflict, bad path, malformed); nothing was written."""


@dataclass
class Hunk:
    old_start: int
    lines: list[tuple[str, str]] = field(default_factory=list)  # (' '|'-'|'+', text without newline)

    def old(self) -> list[str]:
        return [t for op, t in self.lines if op in " -"]

    def new(self) -> list[str]:
        return [t for op, t in self.lines if op in " +"]


@dataclass
class FilePatch:
    old: str | None  # None: a new file
    new: str | None  # None: deleted
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new or self.old or ""


@dataclass(frozen=True)
class Write:
    path: str  # relative to the root
    before: str | None  # sha256 of the old content (None: created)
    after: str | None  # sha256 of the new content (None: deleted)


def _name(raw: str) -> str | None:
    raw = raw.split("\t", 1)[0].strip()
    if raw == "/dev/null":
        return None
    if raw.startswith(("a/", "b/")):
        raw = raw[2:]
    return raw


def parse(text: str) -> list[FilePatch]:
    """The file patches of a unified diff (``diff -u`` or ``git diff``); ApplyRefused when malformed."""
    if len(text.encode("utf-8")) > MAX_PATCH_BYTES:
        raise ApplyRefused(f"the patch is larger than {MAX_PATCH_BYTES:,} bytes")
    lines = text.splitlines()
    out: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            fp = FilePatch(_name(line[4:]), _name(lines[i + 1][4:]))
            out.append(fp)
            i += 2
            continue
        m = _HUNK.match(line)
        if m:
            if not out:
                raise ApplyRefused(f"line {i + 1}: a hunk before any '---'/'+++' file header")
            old_n = int(m[2]) if m[2] is not None else 1
            new_n = int(m[4]) if m[4] is not None else 1
            h = Hunk(int(m[1]))
            i += 1
            seen_old = seen_new = 0
            while i < len(lines) and (seen_old < old_n or seen_new < new_n):
                body = lines[i]
                if body.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                op, rest = (body[:1] or " "), body[1:]
                if op not in " -+":
                    raise ApplyRefused(f"line {i + 1}: hunk line starts with {op!r}, not ' ', '-' or '+'")
                h.lines.append((op, rest))
                seen_old += op in " -"
                seen_new += op in " +"
                i += 1
            if seen_old != old_n or seen_new != new_n:
                raise ApplyRefused(f"a hunk of {out[-1].path} is shorter than its header says")
            out[-1].hunks.append(h)
            continue
        i += 1
    if not out:
        raise ApplyRefused("no file changes found: the artefact is not a unified diff")
    return out


def _inside(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or rel.startswith("~"):
        raise ApplyRefused(f"path {rel!r} is outside the project root (absolute or with '..'); refused")
    target = root / Path(*p.parts)
    real_root = root.resolve()
    real = target.resolve()  # follows symlinks of existing parts
    if real != real_root and real_root not in real.parents:
        raise ApplyRefused(f"path {rel!r} resolves outside the project root (through a symbolic link); refused")
    return target


def _place(content: list[str], h: Hunk) -> int:
    """Where hunk ``h`` applies in ``content``: its stated line, else the one other place its old lines match."""
    old = h.old()
    want = max(h.old_start - 1, 0) if old else h.old_start
    if content[want:want + len(old)] == old:
        return want
    hits = [i for i in range(0, len(content) - len(old) + 1) if content[i:i + len(old)] == old]
    if len(hits) == 1:
        return hits[0]
    raise ApplyRefused(f"the hunk at line {h.old_start} does not match the file "
                       f"({'its lines are not there' if not hits else 'its lines match in several places'})")


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def plan(root: Path, text: str) -> list[tuple[Path, str, bytes | None, bytes | None]]:
    """Check the whole patch: (target, relative path, old bytes, new bytes) per file; ApplyRefused otherwise."""
    result = []
    for fp in parse(text):
        rel = fp.path
        target = _inside(root, rel)
        try:
            if fp.old is None:
                if target.exists() or target.is_symlink():
                    raise ApplyRefused(f"{rel}: the patch creates it, but it already exists")
                old_b = None
                content: list[str] = []
            else:
                if not target.is_file():
                    raise ApplyRefused(f"{rel}: the patch changes it, but there is no such file")
                old_b = target.read_bytes()
                content = old_b.decode("utf-8").splitlines()
            shift = 0
            for h in fp.hunks:
                at = _place(content, h) if fp.old is not None else 0
                if fp.old is not None and at < shift:
                    raise ApplyRefused(f"{rel}: hunks overlap")
                content[at:at + len(h.old())] = h.new()
                shift = at + len(h.new())
        except ApplyRefused as exc:
            raise ApplyRefused(f"{rel}: {exc}" if not str(exc).startswith(rel) else str(exc)) from None
        except UnicodeDecodeError:
            raise ApplyRefused(f"{rel}: not UTF-8 text") from None
        new_b = None if fp.new is None else ("\n".join(content) + "\n").encode("utf-8") if content else b""
        result.append((target, rel, old_b, new_b))
    return result


def apply(root: Path, text: str) -> list[Write]:
    """Check the whole patch, then write every file (temp file + rename); the writes made."""
    changes = plan(root, text)
    writes = []
    for target, rel, old_b, new_b in changes:
        if new_b is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".musubi-apply-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(new_b)
                    f.flush()
                    os.fsync(f.fileno())
                if target.exists():
                    os.chmod(tmp, target.stat().st_mode & 0o7777)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        writes.append(Write(rel, _sha(old_b) if old_b is not None else None,
                            _sha(new_b) if new_b is not None else None))
    return writes
