"""Training pairs for the local embedder, mined from what a team already has (light: no numpy or torch).

Three kinds (docs/finetune.md, "Local embedder adaptation"):

- ``link``: an accepted trace link (``storage/traceability/links.yml``, kind code or test) gives the
  requirement's title and statement (its IDs masked, so the model learns words, not IDs) -> the
  linked code chunk (the chunk holding the link's line; without a line, the file's first definition);
- ``docstring``: a Python function's or method's docstring first sentence -> its code without the
  docstring (the retrieval benchmark's construction, :func:`core.rag.evalset.doc_targets`; classes give
  none: measured, class pairs lowered the benchmark's gain, docs/finetune.md); docstring
  pairs of test modules are dropped when the other modules give ``ENOUGH_CODE_PAIRS`` (a test's docstring
  describes a test, not the code a search is after);
- ``commit``: a commit message's subject -> each function or method the commit changed, as it was
  in that commit (``git log -p``; a repository without git, or git missing, gives none).

Passages are what the index embeds (:func:`core.rag.represent.passage_text`).  Pairs are
deduplicated on (query, passage), and FILES (not pairs) are split between train and held-out by a
hash of the path, so no file has pairs on both sides and the held-out score measures code the model
never saw.  Everything here is pure over a folder, so it is tested on a fixture repository.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.rag.chunking import chunk_file, language_of
from core.rag.chunks import Chunk
from core.rag.evalset import doc_targets
from core.rag.represent import passage_text
from core.rag.textio import read_text

KINDS = ("link", "docstring", "commit")
HELD_OUT_SHARE = 0.2  # share of files whose pairs are held out for the evaluation
MAX_COMMITS = 2000  # newest commits read from git history
MAX_FILES_PER_COMMIT = 20  # larger commits are sweeping changes (renames, reformatting): their message says little
MIN_SUBJECT_WORDS = 3
ENOUGH_CODE_PAIRS = 1000  # docstring pairs of better ranks above which a worse rank's pairs are dropped
# unittest's fixture methods: their docstrings describe a test's set-up, as a test case's describes the test
_TEST_FIXTURES = frozenset({"setUp", "tearDown", "setUpClass", "tearDownClass", "setUpModule", "tearDownModule",
                            "asyncSetUp", "asyncTearDown"})
_TEST_DIRS = frozenset({"test", "tests", "testing"})
GIT_TIMEOUT_S = 120.0
_DEF_KINDS = ("function", "method")
_NOISE = re.compile(r"^(merge|revert|bump|release|version|wip|fixup!|squash!)\b", re.I)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")

__all__ = ["ENOUGH_CODE_PAIRS", "HELD_OUT_SHARE", "KINDS", "Mined", "Pair", "commit_pairs", "dedup",
           "docstring_pairs", "docstring_rank", "held_out", "is_test_path", "link_pairs", "mine", "prefer_code",
           "split"]


@dataclass(frozen=True, slots=True)
class Pair:
    """A query and the passage it should find; ``path`` decides its split, ``source`` says where it came from."""

    kind: str
    query: str
    passage: str
    path: str
    symbol: str
    source: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Mined:
    """Deduplicated pairs split by file, and the counts per kind on each side."""

    train: list[Pair] = field(default_factory=list)
    held_out: list[Pair] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)  # per kind, before deduplication
    notes: list[str] = field(default_factory=list)  # why a kind gave nothing (no git, no links.yml, ...)

    def counts(self) -> dict[str, Any]:
        """``{"train": {kind: n}, "held_out": {kind: n}, "found": {...}, "files": {...}}``."""
        def per_kind(pairs: Sequence[Pair]) -> dict[str, int]:
            return {k: sum(p.kind == k for p in pairs) for k in KINDS}

        return {"train": per_kind(self.train), "held_out": per_kind(self.held_out),
                "found": {k: self.found.get(k, 0) for k in KINDS},
                "files": {"train": len({p.path for p in self.train}), "held_out": len({p.path for p in self.held_out})}}


def held_out(path: str, share: float = HELD_OUT_SHARE) -> bool:
    """Whether a file's pairs are held out: a deterministic hash of the path (same answer in every process)."""
    h = int.from_bytes(hashlib.sha256(path.encode("utf-8", "surrogatepass")).digest()[:4], "big")
    return h < share * 2**32


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def dedup(pairs: Iterable[Pair]) -> list[Pair]:
    """First of each (query, passage), ignoring case and whitespace in the query; order kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in pairs:
        key = (_norm(p.query), p.passage)
        if key not in seen and p.query.strip() and p.passage.strip():
            seen.add(key)
            out.append(p)
    return out


def split(pairs: Iterable[Pair], share: float = HELD_OUT_SHARE) -> tuple[list[Pair], list[Pair]]:
    """(train, held_out) by file: every pair of a file goes to the same side."""
    train: list[Pair] = []
    test: list[Pair] = []
    for p in pairs:
        (test if held_out(p.path, share) else train).append(p)
    return train, test


# -- docstrings -----------------------------------------------------------------------------

def is_test_path(rel: str) -> bool:
    """Whether ``rel`` (``/``-separated) is a test module: under a ``test``/``tests``/``*_test`` folder, or
    named ``test_*.py``/``*_test.py``."""
    *dirs, name = rel.split("/")
    return (any(d in _TEST_DIRS or d.endswith(("_test", "_tests")) for d in dirs) or name.startswith("test_")
            or name.endswith("_test.py"))


def docstring_rank(p: Pair) -> int:
    """0: code outside test modules; 1: a test module's helper (its docstring says what its code does, as
    code's does); 2: a test case or a unittest fixture method of a test module (``test*``, ``setUp``...):
    its docstring describes a test.  Measured on the stdlib benchmark: ranking helpers before test cases
    raised the dense R@10 gain (before interpolation) from a mean of +0.027 to +0.030 over four training
    seeds (docs/finetune.md, "Measured")."""
    if not is_test_path(p.path):
        return 0
    name = p.symbol.rsplit(".", 1)[-1]
    return 2 if name.startswith("test") or name in _TEST_FIXTURES else 1


_DROPPED = ("", "test modules", "test cases")
_ENOUGH = ("", "the other modules", "code and test helpers")


def prefer_code(pairs: Sequence[Pair], enough: int = ENOUGH_CODE_PAIRS) -> tuple[list[Pair], str | None]:
    """Drop the docstring pairs of the worse ranks (:func:`docstring_rank`) once the better ranks give at
    least ``enough`` docstring pairs -> (pairs, a note saying so or None).  Other kinds are kept: a link to
    a test is a team's own word."""
    per_rank = [0, 0, 0]
    for p in pairs:
        if p.kind == "docstring":
            per_rank[docstring_rank(p)] += 1
    cut = next((r for r in (1, 2) if sum(per_rank[:r]) >= enough and sum(per_rank[r:]) > 0), None)
    if cut is None:
        return list(pairs), None
    kept = [p for p in pairs if p.kind != "docstring" or docstring_rank(p) < cut]
    return kept, (f"{sum(per_rank[cut:])} docstring pairs of {_DROPPED[cut]} left out "
                  f"({sum(per_rank[:cut])} from {_ENOUGH[cut]} are enough)")


def docstring_pairs(root: Path, paths: Iterable[str]) -> list[Pair]:
    """Docstring first sentence -> the function's or method's code without it, for the ``.py`` files among
    ``paths``."""
    out: list[Pair] = []
    for rel in paths:
        if not rel.endswith(".py"):
            continue
        text = read_text(root / rel)
        if text is None:
            continue
        out.extend(Pair("docstring", t.query, passage_text(t.chunk), rel, t.chunk.symbol, f"{rel}:{t.chunk.start_line}")
                   for t in doc_targets(rel, text))
    return out


# -- accepted trace links ---------------------------------------------------------------------

def _mask_ids(text: str, ids: Iterable[str]) -> str:
    for i in sorted(set(ids), key=len, reverse=True):
        text = text.replace(i, " ")
    return " ".join(text.split())


def _linked_chunk(chunks: Sequence[Chunk], line: int | None) -> Chunk | None:
    if line is not None:
        for c in chunks:
            if c.start_line <= line <= c.end_line:
                return c
        return None
    defs = [c for c in chunks if c.kind not in ("module", "window", "text")]
    return defs[0] if defs else None


def link_pairs(root: Path) -> tuple[list[Pair], str | None]:
    """Accepted code/test links of ``links.yml`` -> (pairs, why there are none or None)."""
    from core.trace.links import LinksFile
    from core.trace.scanner import scan

    links = [lk for lk in LinksFile.load(root).links if lk.state == "accepted" and lk.kind in ("code", "test")]
    if not links:
        return [], "no accepted code or test links in storage/traceability/links.yml"
    reqs = {r.id: r for doc in scan(root).specs for r in doc.requirements}
    every_id = list(reqs)
    out = []
    chunked: dict[str, list[Chunk]] = {}
    for lk in links:
        req = reqs.get(lk.requirement)
        target = root / lk.target
        if req is None or not target.is_file():
            continue
        if lk.target not in chunked:
            text = read_text(target)
            chunked[lk.target] = chunk_file(lk.target, text, language=language_of(lk.target)) if text else []
        c = _linked_chunk(chunked[lk.target], lk.line)
        query = _mask_ids(". ".join(s for s in (req.title, req.statement) if s), every_id)
        if c is not None and query:
            out.append(Pair("link", query, passage_text(c), lk.target, c.symbol, f"{lk.requirement}->{lk.target}"))
    return out, None


# -- git history ------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def _commits(log: str) -> list[tuple[str, str, dict[str, list[tuple[int, int]]]]]:
    """(sha, subject, {path: [(first, last) new-side lines changed]}) from ``git log -p -U0`` output."""
    out: list[tuple[str, str, dict[str, list[tuple[int, int]]]]] = []
    path: str | None = None
    for ln in log.split("\n"):
        if ln.startswith("\x00commit "):
            sha, _, subject = ln[8:].partition(" ")
            out.append((sha, subject.strip(), {}))
            path = None
        elif ln.startswith("+++ "):
            name = ln[4:]
            path = name[2:] if name.startswith("b/") else None  # /dev/null: a deleted file
        elif out and path is not None and (m := _HUNK.match(ln)):
            start, count = int(m.group(1)), int(m.group(2) or 1)
            if count:  # a pure deletion changes no line of the new version
                out[-1][2].setdefault(path, []).append((start, start + count - 1))
    return out


def commit_pairs(root: Path, indexed: set[str] | None = None, max_commits: int = MAX_COMMITS) -> tuple[
        list[Pair], str | None]:
    """Commit subject -> every function/method it changed, as of that commit -> (pairs, why none or None).

    Only files in ``indexed`` (the files the index would take) when given; merges, noise subjects
    (merge, revert, bump, wip...), subjects under ``MIN_SUBJECT_WORDS`` words and commits touching more
    than ``MAX_FILES_PER_COMMIT`` files are skipped.
    """
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return [], "not a git work tree (or git is not installed): no commit pairs"
    prefix = _git(root, "rev-parse", "--show-prefix") or ""
    log = _git(root, "log", "--no-merges", f"-n{max_commits}", "--format=%x00commit %H %s", "-p", "-U0",
               "--no-color", "--no-ext-diff", "--no-renames", "--diff-filter=AM", "--relative", "--", ".")
    if log is None:
        return [], "git log failed (a repository without commits?): no commit pairs"
    out = []
    for sha, subject, files in _commits(log):
        if len(subject.split()) < MIN_SUBJECT_WORDS or _NOISE.match(subject) or len(files) > MAX_FILES_PER_COMMIT:
            continue
        for rel, ranges in files.items():
            if (indexed is not None and rel not in indexed) or language_of(rel) in ("text", "markdown"):
                continue
            blob = _git(root, "show", f"{sha}:{prefix.strip()}{rel}")
            if not blob:
                continue
            for c in chunk_file(rel, blob, language=language_of(rel)):
                if c.kind in _DEF_KINDS and any(a <= c.end_line and c.start_line <= b for a, b in ranges):
                    out.append(Pair("commit", subject, passage_text(c), rel, c.symbol, sha[:12]))
    return out, None


# -- all of it --------------------------------------------------------------------------------

def mine(root: str | Path, *, share: float = HELD_OUT_SHARE, max_commits: int = MAX_COMMITS) -> Mined:
    """Every kind of pair for the project at ``root``, deduplicated and split by file."""
    from core.rag.walk import iter_files

    root = Path(root)
    paths = [f.path for f in iter_files(root)]
    mined = Mined()
    kinds: dict[str, list[Pair]] = {}
    try:
        kinds["link"], why = link_pairs(root)
    except Exception as exc:  # noqa: BLE001 - a broken links.yml or spec must not cost the other kinds
        kinds["link"], why = [], f"links not read: {getattr(exc, 'message', exc)}"
    if why:
        mined.notes.append(why)
    kinds["docstring"], why = prefer_code(docstring_pairs(root, paths))
    if why:
        mined.notes.append(why)
    kinds["commit"], why = commit_pairs(root, set(paths), max_commits)
    if why:
        mined.notes.append(why)
    mined.found = {k: len(v) for k, v in kinds.items()}
    mined.train, mined.held_out = split(dedup(p for k in KINDS for p in kinds[k]), share)
    return mined
