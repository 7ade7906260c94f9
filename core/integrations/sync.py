"""``musubi sync``: keep a tracker in step with the specs, recording the links in links.yml.

:func:`sync` is the whole operation over a :class:`~core.integrations.contracts.Tracker`:
scan the repository (in a thread), read every item musubi manages in the remote project
(all pages), decide (:mod:`core.integrations.plan`), write (unless ``dry_run``), read each
written item back, and store the links and the statuses read back in
``storage/traceability/links.yml`` (``external``).  links.yml is saved every few seconds
during the writes and at the end; a record a crash loses is not lost work: the item carries
musubi's marker and fingerprint, so the next sync adopts it, never creates it twice.

Every outbound write is reported to ``audit(action, object, outcome, details)``; details
never hold a secret (the connectors' errors are redacted before they get here).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from core.errors import BadRequest, MusubiError
from core.integrations.contracts import AuditFn, RemoteItem, Tracker, WorkItem, error_info
from core.integrations.plan import KINDS, Plan, Step, decide, work_items
from core.trace.links import ExternalLink, LinksFile, now_iso
from core.trace.matrix import Trace, build
from core.trace.scanner import scan

MAX_ITEMS = 5000  # remote items read per sync; more is refused (ask for a narrower project)
SAVE_EVERY_S = 2.0  # links.yml is saved this often during a sync, and at its end
FATAL = ("auth", "config")  # every later call would fail the same way


def _noop_audit(action: str, obj: str, outcome: str, details: Any) -> None:
    return None


async def sync(
    tracker: Tracker, root: Path, project: str, *, dry_run: bool = False, include: tuple[str, ...] = KINDS,
    repo_url: str | None = None, resolve: dict[str, str] | None = None, max_items: int = MAX_ITEMS,
    audit: AuditFn = _noop_audit, lock: AbstractContextManager[Any] | None = None,
    trace: Callable[[Path], Trace] | None = None, progress: Callable[[int, int], None] | None = None,
    after_write: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Sync ``root``'s specs into ``project`` of ``tracker``; answers the report (see docs/integrations.md)."""
    bad = set(include) - set(KINDS)
    if bad or not include:
        raise BadRequest(f"include must be some of {', '.join(KINDS)}; got {', '.join(sorted(bad)) or 'nothing'}.",
                         field="include")
    system = tracker.system
    t = await asyncio.to_thread(trace or (lambda r: build(scan(r), LinksFile.load(r))), root)
    items = work_items(t, include, repo_url)
    unknown = sorted(set(resolve or {}) - {i.artefact for i in items})
    if unknown:
        raise BadRequest(f"--resolve names {', '.join(unknown)}, which is not a requirement or task here.",
                         field="resolve")
    remote_list = await tracker.list_managed(project, max_items)
    remote: dict[str, list[RemoteItem]] = {}
    for r in remote_list:
        remote.setdefault(r.artefact, []).append(r)
    lf = await asyncio.to_thread(LinksFile.load, root)
    stored = {x.artefact: x for x in lf.external if x.system == system and x.project == project}
    plan = decide(items, stored, remote, resolve)
    report = _report(system, project, dry_run, plan, len(items), str(lf.path))
    if dry_run:
        return report
    writer = _Writer(tracker, project, root, stored, audit, lock or nullcontext())
    try:
        for done, step in enumerate(plan.steps, 1):
            await writer.apply(step, report)
            if after_write is not None:
                await after_write()
            if progress:
                progress(done, len(plan.steps))
    finally:  # also when the sync stops half-way (an auth failure, a cancel): keep what was written
        report["links_changed"] = writer.changed
        if writer.changed:
            await asyncio.to_thread(writer.save)
    return report


def _report(system: str, project: str, dry_run: bool, plan: Plan, n: int, path: str) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for s in plan.steps:
        by.setdefault(s.action, []).append(s.to_json())
    return {
        "system": system, "project": project, "dry_run": dry_run, "items": n, "links_file": path,
        "planned": {k: len(v) for k, v in sorted(by.items())},
        "created": by.get("create", []), "updated": by.get("update", []), "adopted": by.get("adopt", []),
        "unchanged": len(by.get("unchanged", [])), "remote_edited": by.get("remote_edited", []),
        "conflicts": by.get("conflict", []), "orphaned": plan.orphaned, "status_changed": [], "failed": [],
        "links_changed": False,
    }


class _Writer:
    """Applies steps, keeping links.yml's ``external`` entries in step with what was written."""

    def __init__(self, tracker: Tracker, project: str, root: Path, stored: dict[str, ExternalLink],
                 audit: AuditFn, lock: AbstractContextManager[Any]) -> None:
        self.tracker, self.project, self.root, self.stored = tracker, project, root, stored
        self.audit, self.lock = audit, lock
        self.keys: dict[str, str] = {aid: x.key for aid, x in stored.items()}  # artefact -> remote key (parents)
        self.changed = False
        self._save_lock = threading.Lock()
        self.saved_at = time.monotonic()

    def save(self) -> None:
        with self.lock, self._save_lock:
            # Re-read and replace only our system/project's entries: a trace review or another
            # project's sync may have written the file meanwhile.
            fresh = LinksFile.load(self.root)
            system = self.tracker.system
            fresh.external = [x for x in fresh.external if not (x.system == system and x.project == self.project)]
            fresh.external += list(self.stored.values())
            fresh.save()
            self.saved_at = time.monotonic()

    async def apply(self, step: Step, report: dict[str, Any]) -> None:
        item = step.item
        if step.remote is not None:
            self.keys[item.artefact] = step.remote.key
        if step.action in ("unchanged", "remote_edited", "adopt"):
            if step.remote is not None:
                self._record(item, step.remote, report, pushed=item.fingerprint() if step.action == "adopt" else None)
            return
        if step.action == "conflict":
            if step.remote is not None and step.stored is not None:
                self._status(step.stored, step.remote, report)  # status still reads back
            return
        parent = self.keys.get(item.parent) if item.parent else None
        action = "integration.create" if step.action == "create" else "integration.update"
        system = self.tracker.system
        try:
            if step.action == "create":
                rem = await self.tracker.create(self.project, item, parent)
            else:
                assert step.remote is not None
                rem = await self.tracker.update(self.project, step.remote, item, parent)
        except MusubiError as exc:
            info = error_info(exc, system)
            target = f"{system}:{step.remote.key if step.remote else self.project}"
            self.audit(action, target, "failed", {"artefact": item.artefact, "kind": info["kind"],
                                                  "status": info["status"], "request_id": info["request_id"],
                                                  "error": exc.message[:300]})
            report["failed"].append({"artefact": item.artefact, "action": step.action, **info})
            if info["kind"] in FATAL or (info["kind"] == "not_found" and step.action == "create"):
                raise
            return
        self.audit(action, f"{system}:{rem.key}", "ok", {"artefact": item.artefact, "project": self.project,
                                                          "url": rem.url})
        self.keys[item.artefact] = rem.key
        self._record(item, rem, report, pushed=item.fingerprint())
        if step.action == "create":
            for entry in report["created"]:
                if entry["artefact"] == item.artefact:
                    entry["key"], entry["url"] = rem.key, rem.url
        # Saved at most every SAVE_EVERY_S (and at the end): saving after each write made a 1,800-item
        # first sync quadratic in links.yml's size.  A record a crash loses is not lost work: the next
        # sync finds the item by its marker and adopts it.
        if time.monotonic() - self.saved_at >= SAVE_EVERY_S:
            await asyncio.to_thread(self.save)

    def _record(self, item: WorkItem, rem: RemoteItem, report: dict[str, Any], pushed: str | None) -> None:
        st = self.stored.get(item.artefact)
        changed = st is None
        if st is None:
            st = self.stored[item.artefact] = ExternalLink(item.artefact, self.tracker.system, self.project, rem.key)
        new = {"key": rem.key, "url": rem.url, "remote": rem.fingerprint}
        if pushed is not None:
            new["pushed"] = pushed
        for k, v in new.items():
            if getattr(st, k) != v:
                setattr(st, k, v)
                changed = True
        self._status(st, rem, report, changed)

    def _status(self, st: ExternalLink, rem: RemoteItem, report: dict[str, Any], changed: bool = False) -> None:
        if (st.status, st.done) != (rem.status, rem.done):
            if st.status:
                report["status_changed"].append({"artefact": st.artefact, "key": rem.key, "from": st.status,
                                                 "to": rem.status, "done": rem.done})
            st.status, st.done = rem.status, rem.done
            changed = True
        if changed:  # `at`: when this entry last changed, so an idle sync leaves the file byte for byte
            st.at = now_iso()
            self.changed = True
