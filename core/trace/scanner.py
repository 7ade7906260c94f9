"""Incremental scan of a repository: spec files parsed, source files searched for IDs.

A re-scan lists the files again (cheap) and reads only those whose size or
mtime changed; of those, a file whose content hash is unchanged is not parsed
again.  Per-file results live in memory and, when a cache path is given, in a
JSON file (the engine keeps it under ``$MUSUBI_HOME/tenants/<tenant>/trace/``)
so the next engine process starts warm.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from core.trace import files as F
from core.trace import layouts
from core.trace.config import DOC_EXTENSIONS, LINKS_FILE, TraceConfig
from core.trace.lexer import Hit, scan_bytes
from core.trace.specs import SpecDoc, parse_spec

CACHE_VERSION = 2
SAVE_NOW_FILES = 200  # a re-scan that parsed this many files writes the cache at once
SAVE_DELAY_S = 5.0  # otherwise the cache is written this long after the change
ROLES = ("requirements", "design", "tasks")


_UNANCHORED = "^(?:.+/)?"
_ORDER = {"requirements": 0, "design": 1, "tasks": 2, "test": 3}


def _glob_regexes(globs: list[str]) -> tuple[str, str] | None:
    """(basename regex, path regex) for a list of gitwildmatch globs, or None when a
    negation needs pathspec's ordered evaluation.

    A glob without a slash (``test_*.py``) matches a file's name at any depth;
    pathspec compiles it as ``^(?:.+/)?NAME``, which backtracks over the whole path
    for every such glob (~20 us a path for the test conventions).  Matching those
    against the basename alone is an order of magnitude cheaper.
    """
    pats = list(pathspec.GitIgnoreSpec.from_lines(globs).patterns)
    if any(p.include is False for p in pats):
        return None
    names, paths = [], []
    for p in pats:
        if not p.include or p.regex is None:
            continue
        rx = p.regex.pattern.replace("(?P<ps_d>/)", "/")
        tail = rx[len(_UNANCHORED) :]
        glob = str(getattr(p, "pattern", "/"))
        if rx.startswith(_UNANCHORED) and "/" not in glob.rstrip("/"):
            names.append(tail)  # matched from the basename's offset with match(rel, pos)
        else:
            paths.append(rx)
    never = "(?!)"
    return ("|".join(f"(?:{x})" for x in names) or never, "|".join(f"(?:{x})" for x in paths) or never)


class RoleClassifier:
    """Which role a path plays (requirements, design, tasks, test); the first role that matches wins."""

    ROLES = ("requirements", "design", "tasks", "test")

    def __init__(self, config: TraceConfig) -> None:
        groups = {
            "requirements": config.requirement_globs,
            "design": config.design_globs,
            "tasks": config.task_globs,
            "test": config.test_globs,
        }
        self._name_rx: re.Pattern[str] | None = None
        self._path_rx: re.Pattern[str] | None = None
        self._specs: list[tuple[str, pathspec.PathSpec]] = []
        regs = {k: _glob_regexes(v) for k, v in groups.items()}
        if all(r is not None for r in regs.values()):
            # One alternation per kind of regex, roles in order: the regex engine returns the
            # first alternative that matches, so ``lastgroup`` is the earliest matching role.
            self._name_rx = re.compile("|".join(f"(?P<{k}>{regs[k][0]})" for k in self.ROLES))  # type: ignore[index]
            self._path_rx = re.compile("|".join(f"(?P<{k}>{regs[k][1]})" for k in self.ROLES))  # type: ignore[index]
        else:
            self._specs = [(k, pathspec.GitIgnoreSpec.from_lines(groups[k])) for k in self.ROLES]

    def role(self, rel: str) -> str | None:
        if self._name_rx is None or self._path_rx is None:
            return next((k for k, sp in self._specs if sp.match_file(rel)), None)
        by_path = self._path_rx.match(rel)
        by_name = self._name_rx.match(rel, rel.rfind("/") + 1)
        a = by_path.lastgroup if by_path else None
        b = by_name.lastgroup if by_name else None
        if a is None or b is None:
            return a or b
        return a if _ORDER[a] <= _ORDER[b] else b


@dataclass(slots=True)
class Entry:
    """Cached result for one file."""

    size: int
    mtime_ns: int
    digest: str
    role: str  # requirements | design | tasks | code | test | skipped
    hits: list[Hit] = field(default_factory=list)
    spec: SpecDoc | None = None
    reason: str = ""  # why skipped

    def to_json(self) -> list[Any]:
        payload: Any = self.spec.to_dict() if self.spec else [list(h) for h in self.hits]
        return [self.size, self.mtime_ns, self.digest, self.role, payload, self.reason]

    @classmethod
    def from_json(cls, row: list[Any]) -> Entry:
        size, mtime, digest, role, payload, reason = row
        if role in ROLES:
            return cls(size, mtime, digest, role, spec=SpecDoc.from_dict(payload), reason=reason)
        return cls(size, mtime, digest, role, hits=[(h[0], h[1], h[2]) for h in payload], reason=reason)


@dataclass
class ScanResult:
    """The state of a repository after a scan."""

    root: str
    listing: str  # git | walk
    config: TraceConfig
    specs: list[SpecDoc]
    code: dict[str, list[Hit]]  # production files with hits
    tests: dict[str, list[Hit]]  # test files with hits
    skipped: dict[str, str]  # path -> reason (binary, too large, symlink, ...)
    files: int
    read: int  # files read this scan
    parsed: int  # files parsed this scan (content changed)
    seconds: float
    layouts: list[dict[str, Any]] = field(default_factory=list)
    active_feature: str | None = None  # Spec Kit feature of the git branch

    def stats(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "listing": self.listing,
            "files": self.files,
            "read": self.read,
            "parsed": self.parsed,
            "spec_files": len(self.specs),
            "code_files_with_ids": len(self.code),
            "test_files_with_ids": len(self.tests),
            "skipped": len(self.skipped),
            "skipped_files": dict(sorted(self.skipped.items())),
            "seconds": round(self.seconds, 4),
            "config": self.config.source,
            "layouts": self.layouts,
            "active_feature": self.active_feature,
        }

    def diagnosis(self) -> dict[str, Any] | None:
        """Spec files found but no requirement recognised: what was tried and what to write (else None)."""
        return layouts.diagnose(self.specs, self.config)


class Scanner:
    """Scans one repository; call :meth:`scan` again for an incremental re-scan. Thread-safe."""

    def __init__(self, root: Path, cache_file: Path | None = None) -> None:
        self.root = root
        self.cache_file = cache_file
        self.entries: dict[str, Entry] = {}
        self.config_fp: str | None = None
        self.cites_fp: str | None = None  # which local citation forms code was scanned for
        self.lock = threading.Lock()
        self._loaded = False
        self._saved_once = False
        self._timer: threading.Timer | None = None
        self.listed: list[str] = []  # the files of the last scan (the file watcher watches their folders)

    # -- cache ------------------------------------------------------------------------------

    def _load_cache(self) -> None:
        self._loaded = True
        if not self.cache_file:
            return
        try:
            data = json.loads(self.cache_file.read_text("utf-8"))
            if data.get("version") != CACHE_VERSION or data.get("root") != str(self.root):
                return
            self.config_fp = data["config"]
            self.cites_fp = data.get("cites")
            self.entries = {k: Entry.from_json(v) for k, v in data["entries"].items()}
            self._saved_once = True
        except (OSError, ValueError, KeyError, TypeError):
            # A missing or damaged cache only costs a full scan.
            self.entries, self.config_fp = {}, None

    def _schedule_save(self, parsed: int) -> None:
        """Write the cache now after a big change, else a few seconds later in the background.

        Serialising ten thousand entries costs about as much as a re-scan, so an
        edit-and-rescan loop must not pay it each time; losing the last seconds of
        cache in a crash only costs re-reading those files.
        """
        if not self.cache_file:
            return
        if parsed >= SAVE_NOW_FILES or not self._saved_once:
            with contextlib.suppress(OSError):
                self._save_cache()
            return
        if self._timer is None:
            self._timer = threading.Timer(SAVE_DELAY_S, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        """Write a pending cache update (called by the timer; safe to call any time)."""
        with self.lock:
            self._timer = None
            with contextlib.suppress(OSError):
                self._save_cache()

    def _save_cache(self) -> None:
        if not self.cache_file:
            return
        self._saved_once = True
        data = {
            "version": CACHE_VERSION,
            "root": str(self.root),
            "config": self.config_fp,
            "cites": self.cites_fp,
            "entries": {k: e.to_json() for k, e in self.entries.items()},
        }
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")), "utf-8")
        os.replace(tmp, self.cache_file)

    # -- scanning ---------------------------------------------------------------------------

    def scan(self) -> ScanResult:
        with self.lock:
            # The scan allocates tens of thousands of small objects and frees none of them;
            # the cyclic collector would walk the growing heap over and over for nothing.
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                return self._scan()
            finally:
                if was_enabled:
                    gc.enable()

    def _scan(self) -> ScanResult:
        t0 = time.perf_counter()
        if not self._loaded:
            self._load_cache()
        config = TraceConfig.load(self.root)
        fp = config.fingerprint()
        if fp != self.config_fp:
            self.entries, self.config_fp = {}, fp
        listed, how = F.list_files(self.root)
        listed = F.filter_files(listed, config.exclude)
        self.listed = listed
        classify = RoleClassifier(config).role
        root = str(self.root) + "/"
        self._read = self._parsed = 0
        new: dict[str, Entry] = {}
        skipped: dict[str, str] = {}
        changed = False
        code_todo: list[tuple[str, os.stat_result, Entry | None, str]] = []
        # Spec files first: which local forms they use (Kiro numbers, Spec Kit IDs) decides what
        # code is searched for.
        for rel in listed:
            if rel == LINKS_FILE:
                continue  # our own bookkeeping, not code
            if not rel.isascii() and _undecodable(rel):
                # A name that is not UTF-8 cannot travel in JSON; say so under a readable form.
                skipped[rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")] = "file name is not UTF-8"
                continue
            prev = self.entries.get(rel)
            try:
                st = os.lstat(root + rel)
            except OSError as exc:
                skipped[rel] = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc.strerror}"
                continue
            if prev is not None and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns:
                new[rel] = prev
                if prev.role == "skipped":
                    skipped[rel] = prev.reason
                continue
            changed = True
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                # Links are never followed (their target is scanned where it lives; loops cannot trap us).
                skipped[rel] = "symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                continue
            role = classify(rel)
            if role is None:
                dot = rel.rfind(".")
                if dot > rel.rfind("/") and rel[dot:].lower() in DOC_EXTENSIONS:
                    # Prose outside the spec folders is not code; remembered so it is not re-classified.
                    new[rel] = Entry(st.st_size, st.st_mtime_ns, "", "doc")
                    continue
                role = "code"
            if role in ROLES:
                self._read_one(config, root, rel, st, prev, role, new, skipped, "")
            else:
                code_todo.append((rel, st, prev, role))
        specs = [e.spec for e in new.values() if e.spec is not None]
        cites = ("k" if any("kiro" in d.forms for d in specs) else "") + (
            "s" if any("speckit" in d.forms for d in specs) else ""
        )
        if cites != self.cites_fp:
            # Code was searched for other citation forms: search it again (rare: a layout appeared or went).
            self.cites_fp = cites
            changed = True
            code_todo += [
                (rel, os.lstat(root + rel), None, e.role) for rel, e in list(new.items()) if e.role in ("code", "test")
            ]
        fixture = GlobMatcher(config.fixtures)
        for rel, st, prev, role in code_todo:
            self._read_one(config, root, rel, st, prev, role, new, skipped, cites, fixture.match(rel))
        dirty = changed or len(new) != len(self.entries)
        self.entries = new
        if dirty:
            self._schedule_save(self._parsed)
        specs = [e.spec for e in self.entries.values() if e.spec is not None]
        specs.sort(key=lambda d: d.path)
        code = {k: e.hits for k, e in self.entries.items() if e.role == "code" and e.hits}
        test = {k: e.hits for k, e in self.entries.items() if e.role == "test" and e.hits}
        return ScanResult(
            str(self.root), how, config, specs, code, test, skipped, len(listed), self._read, self._parsed,
            time.perf_counter() - t0, layouts.report(specs), layouts.active_feature(self.root, specs),
        )

    def _read_one(
        self, config: TraceConfig, root: str, rel: str, st: os.stat_result, prev: Entry | None, role: str,
        new: dict[str, Entry], skipped: dict[str, str], cites: str, data_strings: bool = False,
    ) -> None:
        """Read, hash and (when its content changed) parse or search one file into ``new``."""
        size, mtime = st.st_size, st.st_mtime_ns
        if size > config.max_file_bytes:
            reason = f"larger than max_file_bytes ({size} > {config.max_file_bytes})"
            new[rel] = Entry(size, mtime, "", "skipped", reason=reason)
            skipped[rel] = reason
            return
        data = F.read_bytes(root + rel, size)
        self._read += 1
        if isinstance(data, str):
            skipped[rel] = data
            return
        digest = hashlib.blake2b(data, digest_size=12).hexdigest()
        if prev is not None and prev.digest == digest and prev.role == role:
            prev.size, prev.mtime_ns = size, mtime
            new[rel] = prev
            return
        self._parsed += 1
        if F.is_binary(data):
            new[rel] = Entry(size, mtime, digest, "skipped", reason="binary")
            skipped[rel] = "binary"
            return
        if role in ROLES:
            new[rel] = Entry(size, mtime, digest, role, spec=parse_spec(F.decode(data), rel, role, config.ids))
            return
        hits = scan_bytes(data, rel, role == "test", config.ids, cites, data_strings)
        new[rel] = Entry(size, mtime, digest, role, hits=hits)


class GlobMatcher:
    """Fast membership test for a list of gitwildmatch globs (basename globs matched on the name)."""

    def __init__(self, globs: list[str]) -> None:
        regs = _glob_regexes(globs) if globs else ("(?!)", "(?!)")
        self._spec = pathspec.GitIgnoreSpec.from_lines(globs) if regs is None else None
        self._name = re.compile(regs[0]) if regs else None
        self._path = re.compile(regs[1]) if regs else None

    def match(self, rel: str) -> bool:
        if self._spec is not None:
            return bool(self._spec.match_file(rel))
        assert self._name is not None and self._path is not None
        return bool(self._path.match(rel) or self._name.match(rel, rel.rfind("/") + 1))


def _undecodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True  # lone surrogates from surrogateescape: the bytes were not UTF-8
    return False


def scan(root: str | Path) -> ScanResult:
    """One-off scan without a cache (library and tests)."""
    return Scanner(Path(root).resolve()).scan()
