"""Which files of a project are indexed (light).

The list comes from :func:`core.trace.files.list_files`, shared with the traceability
scanner: in a git work tree ``git ls-files --cached --others --exclude-standard`` (tracked
files plus new files .gitignore does not exclude, so a file not yet added is searchable;
also when the root is a folder inside a work tree; works in a repository with no commits;
``-z`` keeps spaces, newlines and non-ASCII in names intact), elsewhere a walk honouring
every ``.gitignore`` it meets.  Submodules are not entered: git lists a submodule as one
gitlink entry, which is not a regular file and is skipped; its code is someone else's,
pinned by commit, like vendored code.

Then, per file, in this order (the first that applies skips it, reported to ``on_skip``):
a name that is not valid UTF-8; a vendored or generated path (:data:`VENDORED`, plus the
caller's ``exclude`` patterns, gitignore syntax); a known binary extension; a symlink whose
target lies outside the root (never followed); anything but a regular file; a file over
``max_bytes``; a NUL byte in its first 8 KiB; lines averaging over 300 bytes (minified).

Default size limit: :data:`DEFAULT_MAX_BYTES` = 1 MiB.  Hand-written source is far
below it (the largest module of CPython's standard library, ``pydoc_data/topics.py``, is
generated and about 0.8 MB; the largest hand-written ones are 0.2-0.3 MB), while the files
above it are amalgamations, generated parsers, data dumps and bundles, whose thousands of
chunks would crowd real code out of search results.  Same order as other code-search
engines' defaults (Sourcegraph: 1 MB).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from core.rag.textio import SNIFF_BYTES, is_binary
from core.trace.files import _git_files, list_files

DEFAULT_MAX_BYTES = 1 << 20

#: Vendored, generated or tool-owned paths never worth embedding (gitignore syntax).
VENDORED: tuple[str, ...] = (
    "node_modules/", "bower_components/", "vendor/", "third_party/", "dist/", "build/",
    ".venv/", "venv/", "__pycache__/", ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/",
    ".ruff_cache/", "site-packages/", ".eggs/", "*.egg-info/", ".next/", ".nuxt/", ".gradle/",
    "*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json", "pnpm-lock.yaml", "go.sum",
    "*_pb2.py", "*_pb2_grpc.py", "*.pb.go",
)  # fmt: skip

BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z",
    ".tar", ".jar", ".war", ".class", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".pyc", ".pyo", ".whl", ".woff",
    ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".mov", ".wav", ".ogg", ".sqlite", ".db", ".duckdb", ".parquet",
    ".npy", ".npz", ".pkl", ".bin", ".ai", ".eps", ".psd", ".svg",
})  # fmt: skip

# Minified bundles and one-line data (an SVG, a JSON dump) are one endless "line": nothing a
# window can cut, and nothing a person searches.  Hand-written code averages 30-40 bytes a line.
MINIFIED_MIN_BYTES = 4096
MINIFIED_LINE_BYTES = 300

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to index: where it is and what its bytes hash to."""

    path: str  # POSIX path relative to the project root
    abspath: Path  # the file to read (for a symlink inside the root: its target)
    size: int  # bytes
    sha256: str  # hex digest of the file's bytes


def iter_files(
    root: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    exclude: Sequence[str] = (),
    on_skip: Callable[[str, str], None] | None = None,
    known: Mapping[str, tuple[int, int, str]] | None = None,
) -> Iterator[SourceFile]:
    """The files of the project at ``root`` worth indexing, sorted by path (see the module docstring).

    ``exclude`` adds gitignore-style patterns to :data:`VENDORED`; ``on_skip(path, reason)``
    hears about every file left out and why.  ``known`` (``path -> (size, mtime_ns, sha256)``, from
    :func:`core.rag.snapshot.trusted`): a regular file with that size and mtime is not read again,
    its recorded hash is reused.  Raises :class:`core.errors.BadRequest` if
    ``root`` is not a directory.
    """
    base = Path(root).resolve()
    names = listed(base)
    skip = on_skip or (lambda _p, _r: None)
    vendored = pathspec.GitIgnoreSpec.from_lines([*VENDORED, *exclude])
    for rel in names:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            skip(rel, "file name is not valid UTF-8")
            continue
        if vendored.match_file(rel):
            skip(rel, "vendored or generated")
            continue
        if os.path.splitext(rel)[1].lower() in BINARY_SUFFIXES:
            skip(rel, "binary (by extension)")
            continue
        if known and rel in known:
            same = _unchanged(base / rel, known[rel], max_bytes)
            if same is not None:
                yield SourceFile(path=rel, abspath=base / rel, size=same, sha256=known[rel][2])
                continue
        found = _open_checked(base, rel, max_bytes)
        if isinstance(found, str):
            skip(rel, found)
        else:
            yield found


def listed(base: Path) -> list[str]:
    """Every path the walk considers under the resolved ``base`` (before any skip rule), sorted."""
    names, how = list_files(base)
    if how == "walk" and not (base / ".git").exists():
        # A project folder inside a larger work tree (a monorepo's package): git still knows
        # best what is tracked and ignored there (the repo's own .gitignore, info/exclude).
        names = _git_files(base) or names
    return names


def _unchanged(path: Path, was: tuple[int, int, str], max_bytes: int) -> int | None:
    """The size of ``path`` if it is still the regular file ``was`` describes (same size and mtime), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes or (st.st_size, st.st_mtime_ns) != was[:2]:
        return None
    return st.st_size


def _open_checked(base: Path, rel: str, max_bytes: int) -> SourceFile | str:
    """The :class:`SourceFile` for ``rel``, or why it is skipped."""
    path = base / rel
    try:
        st = os.lstat(path)
    except OSError:
        return "missing (listed by git but not on disk)"
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(base):
            return "symlink leads outside the project"
        path = target
        try:
            st = os.lstat(path)
        except OSError:
            return "broken symlink"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > max_bytes:
        return f"larger than {max_bytes} bytes"
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if len(data) > max_bytes:
        return f"larger than {max_bytes} bytes"
    if is_binary(data[:SNIFF_BYTES]) and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary (NUL byte in the first 8 KiB)"
    if len(data) > MINIFIED_MIN_BYTES and len(data) > MINIFIED_LINE_BYTES * (data.count(b"\n") + 1):
        return f"minified or generated (lines average over {MINIFIED_LINE_BYTES} bytes)"
    return SourceFile(
        path=rel, abspath=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
