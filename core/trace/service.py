"""The traceability operations the engine serves, over scanners kept warm per repository.

Everything here is synchronous and thread-safe per repository; the engine runs
it in a worker thread (``asyncio.to_thread``) so a scan never blocks its loop.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import BadRequest, NotFound
from core.trace.export import render
from core.trace.links import LinksFile, StoredLink, now_iso, validate_link, write_lock
from core.trace.lint import lint_specs, lint_summary, nothing_recognised
from core.trace.matrix import Trace, build
from core.trace.scanner import Scanner
from core.trace.suggest import SuggestionCache
from core.trace.watch import ENV, Watches


def cache_name(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:16] + ".json"


class TraceService:
    """Scanners per (tenant, repository); ``cache_dir(tenant)`` says where their caches live."""

    def __init__(self, cache_dir: Callable[[str], Path] | None = None) -> None:
        self.cache_dir = cache_dir
        self._scanners: dict[tuple[str, Path], Scanner] = {}
        self._lock = threading.Lock()
        self.watches = Watches()
        # The last trace of each repository and the watch version it was scanned at.
        self._last: dict[tuple[str, Path], tuple[int, Trace]] = {}
        self.suggestions = SuggestionCache()

    @staticmethod
    def _writing(root: Path) -> threading.Lock:
        """One writer of a repository's links.yml at a time (read, change, write back); shared with musubi sync."""
        return write_lock(root)

    def scanner(self, tenant: str, root: Path) -> Scanner:
        key = (tenant, root)
        with self._lock:
            sc = self._scanners.get(key)
            if sc is None:
                cache = self.cache_dir(tenant) / "trace" / cache_name(root) if self.cache_dir else None
                sc = self._scanners[key] = Scanner(root, cache)
            return sc

    def trace(self, tenant: str, root: Path) -> Trace:
        """Re-scan (incrementally) and join with links.yml."""
        w = self.watches.peek(root)  # a plain read never starts a watcher; the automatic re-scan does
        version = w.version if w is not None else -1  # read before the scan: a change during it counts
        sc = self.scanner(tenant, root)
        scan = sc.scan()
        if w is not None:
            w.ensure(sc.listed)  # (re)start on the folders this scan listed, if they changed
        t = build(scan, LinksFile.load(root))
        self.suggestions.apply(tenant, root, t)
        self._last[(tenant, root)] = (version, t)
        return t

    def changed_trace(self, tenant: str, root: Path) -> tuple[Trace, dict[str, Any]]:
        """The automatic re-scan: scan only if the watcher saw a change since the last scan.

        Returns the trace and how changes are detected (``{"mode": "watch"|"poll", "reason"}``).
        Where the repository is not watched, this is a plain (incremental) re-scan.
        """
        w = self.watches.get(root)
        last = self._last.get((tenant, root))
        if w is not None and w.watching and last is not None and last[0] == w.version:
            return last[1], {**w.mode(), "rescanned": False}
        t = self.trace(tenant, root)
        mode = w.mode() if w is not None else {"mode": "poll", "reason": f"watching is off ({ENV}=0) or at its limit"}
        return t, {**mode, "rescanned": True}

    def close(self) -> None:
        """Stop the file watchers (the engine's graceful stop)."""
        self.watches.close()

    # -- read views -------------------------------------------------------------------------

    def report(self, tenant: str, root: Path) -> dict[str, Any]:
        t = self.trace(tenant, root)
        return {**t.to_json(), "suggestions": self.suggestions.status(tenant, root)}

    def summary(self, tenant: str, root: Path, changes: bool = False) -> dict[str, Any]:
        """Counts only. ``changes``: the Trace screen's periodic ask whether anything changed, answered
        through the file watcher (:meth:`changed_trace`); else a plain incremental re-scan, which never
        misses an edit made a moment before (a watcher reports changes a debounce later)."""
        if not changes:
            t = self.trace(tenant, root)
            return {"root": str(root), "scan": t.scan.stats(), "summary": t.summary(), "diagnosis": t.scan.diagnosis()}
        t, watch = self.changed_trace(tenant, root)
        stats = t.scan.stats()
        if not watch["rescanned"]:
            stats.update(read=0, parsed=0)  # nothing was read: the answer is the last scan's
        stats["watch"] = watch
        return {"root": str(root), "scan": stats, "summary": t.summary(), "diagnosis": t.scan.diagnosis()}

    def show(self, tenant: str, root: Path, rid: str) -> dict[str, Any]:
        t = self.trace(tenant, root)
        row = _row(t, rid)
        findings = [f.to_json() for f in lint_specs(t.scan.specs, t.scan.config.ids) if f.id == rid]
        rejected = [vars(lk) for lk in t.rejected if lk.via == rid]
        return {**row.to_json(), "findings": findings, "rejected": rejected}

    def gaps(self, tenant: str, root: Path) -> dict[str, Any]:
        t = self.trace(tenant, root)
        return {"root": str(root), "summary": t.summary(), **t.gaps(), "diagnosis": t.scan.diagnosis()}

    def impact(self, tenant: str, root: Path, rid: str) -> dict[str, Any]:
        t = self.trace(tenant, root)
        _row(t, rid)
        return t.impact(rid)

    def lint(self, tenant: str, root: Path) -> dict[str, Any]:
        scan = self.scanner(tenant, root).scan()
        findings = lint_specs(scan.specs, scan.config.ids)
        diagnosis = scan.diagnosis()
        if diagnosis:
            findings.insert(0, nothing_recognised(diagnosis))
        reqs = sum(len(d.requirements) for d in scan.specs)
        return {"root": str(root), "spec_files": len(scan.specs), "requirements": reqs, **lint_summary(findings),
                "diagnosis": diagnosis}

    def export(self, tenant: str, root: Path, fmt: str) -> dict[str, Any]:
        report = self.report(tenant, root)
        return {"format": fmt, "content": render(report, fmt)}

    # -- writes to links.yml ----------------------------------------------------------------

    def review(self, tenant: str, root: Path, rid: str, by: str) -> dict[str, Any]:
        """Record that ``by`` reviewed ``rid`` as it reads now: its links stop being suspect."""
        t = self.trace(tenant, root)
        row = _row(t, rid)
        with self._writing(root):
            lf = LinksFile.load(root)
            before = lf.reviews.get(rid, {}).get("fingerprint")
            entry = lf.review(row.req, by)
            lf.save()
            self._last.pop((tenant, root), None)  # links changed: the next ask re-reads them
        return {"id": rid, "previous_fingerprint": before, **entry, "was_suspect": row.suspect, "file": str(lf.path)}

    def decide_link(
        self, tenant: str, root: Path, rid: str, kind: str, target: str, line: Any, state: str, source: str, by: str
    ) -> dict[str, Any]:
        """Accept or reject a link (a manual one, or a suggestion) and store the decision in links.yml."""
        validate_link(rid, kind, target, line, source, state)
        t = self.trace(tenant, root)
        _row(t, rid)
        if kind in ("code", "test"):
            if not (root / target).is_file():
                raise BadRequest(f"link target {target!r} is not a file in {root}.", field="target")
        elif target not in t.design and target not in t.tasks:
            raise NotFound(f"no design element or task {target!r}; see: musubi trace gaps", field="target")
        with self._writing(root):
            lf = LinksFile.load(root)
            link = lf.put(StoredLink(rid, kind, target, line, source, state, by, now_iso()))
            lf.save()
            self._last.pop((tenant, root), None)  # links changed: the next ask re-reads them
        return {**link.to_yaml(), "file": str(lf.path)}

    def remove_link(self, tenant: str, root: Path, rid: str, kind: str, target: str, line: Any) -> dict[str, Any]:
        with self._writing(root):
            lf = LinksFile.load(root)
            if not lf.remove(rid, kind, target, line):
                raise NotFound(f"links.yml has no {kind} link from {rid} to {target}" + (f":{line}" if line else "") + ".")
            lf.save()
            self._last.pop((tenant, root), None)  # links changed: the next ask re-reads them
        return {"removed": True, "requirement": rid, "kind": kind, "target": target, "line": line}


def _row(t: Trace, rid: str) -> Any:
    if not isinstance(rid, str) or not rid:
        raise BadRequest("give a requirement ID, e.g. REQ-AUTH-001.", field="id")
    row = t.rows.get(rid)
    if row is None:
        close = difflib.get_close_matches(rid, list(t.rows), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else " See all with: musubi trace"
        raise NotFound(f"no requirement {rid!r} in {t.scan.root}.{hint}", resource=f"requirement:{rid}")
    return row
