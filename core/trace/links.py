"""``storage/traceability/links.yml``: links people accepted and requirements they reviewed.

The file lives in the repository so it is reviewed in pull requests and shared
across machines; the user's code is never edited.  Shape::

    version: 1
    links:                      # one entry per link a person decided on
      - requirement: REQ-AUTH-001
        kind: code              # design | task | code | test
        target: src/auth/login.py
        line: 12                # optional
        source: manual          # manual | suggested (a code-search suggestion)
        state: accepted         # accepted | rejected
        by: alice
        at: '2025-01-31T12:00:00Z'
    reviews:                    # fingerprint of each requirement's text when last reviewed
      REQ-AUTH-001: {fingerprint: 5c1e..., by: alice, at: '2025-01-31T12:00:00Z'}
    external:                   # items in other systems that `musubi sync` keeps in step
      - artefact: REQ-AUTH-001  # a requirement or task ID
        system: jira            # jira | github | gitlab | ado
        project: PROJ           # the remote project (Jira key, owner/repo, ...)
        key: PROJ-12            # the remote item as people write it
        url: https://acme.atlassian.net/browse/PROJ-12
        status: In Progress     # read back at each sync
        done: false
        pushed: 9f2c...         # fingerprint of the text musubi last wrote there
        remote: 31ab...         # fingerprint of the remote text as read back after that write
        at: '2025-01-31T12:00:00Z'

A requirement whose current fingerprint differs from its review makes its
downstream links *suspect* until someone reviews it again.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core.errors import BadRequest
from core.limits import LINE
from core.trace.config import LINKS_FILE
from core.trace.specs import Requirement

LINK_KINDS = ("design", "task", "code", "test")
LINK_SOURCES = ("manual", "suggested")
STORED_STATES = ("accepted", "rejected")
HEADER = "# Musubi traceability: links people accepted and requirements they reviewed.\n# Edited by `musubi trace review` / `musubi trace accept`; safe to review in a pull request.\n"


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(root: Path) -> threading.Lock:
    """The one lock of this process for read-change-write of ``root``'s links.yml.

    Trace reviews and link decisions (:class:`core.trace.service.TraceService`) and ``musubi sync``
    (:mod:`core.integrations.sync`) both take it, so neither can save over the other's change.
    Keyed by the real path, so two spellings of one repository share it.
    """
    key = os.path.realpath(root)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


def fingerprint(req: Requirement) -> str:
    """Hash of what a requirement says (title, statement, criteria), blind to whitespace and line ends."""
    text = "\n".join([req.title, req.statement, *req.criteria])
    norm = re.sub(r"\s+", " ", text).strip()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredLink:
    requirement: str
    kind: str
    target: str
    line: int | None = None
    source: str = "manual"
    state: str = "accepted"
    by: str = ""
    at: str = ""

    def key(self) -> tuple[str, str, str, int | None]:
        return (self.requirement, self.kind, self.target, self.line)

    def to_yaml(self) -> dict[str, Any]:
        d: dict[str, Any] = {"requirement": self.requirement, "kind": self.kind, "target": self.target}
        if self.line is not None:
            d["line"] = self.line
        d.update({"source": self.source, "state": self.state, "by": self.by, "at": self.at})
        return d


EXTERNAL_FIELDS = ("artefact", "system", "project", "key", "url", "status", "done", "pushed", "remote", "at")


@dataclass
class ExternalLink:
    """An item in another system (Jira issue, GitHub issue, ...) that ``musubi sync`` keeps in step with an artefact."""

    artefact: str
    system: str
    project: str
    key: str
    url: str = ""
    status: str = ""
    done: bool = False
    pushed: str = ""
    remote: str = ""
    at: str = ""

    def to_yaml(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EXTERNAL_FIELDS}


@dataclass
class LinksFile:
    """The parsed links.yml of one repository (empty when the file does not exist)."""

    path: Path
    links: list[StoredLink] = field(default_factory=list)
    reviews: dict[str, dict[str, str]] = field(default_factory=dict)
    external: list[ExternalLink] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> LinksFile:
        path = root / LINKS_FILE
        lf = cls(path)
        try:
            raw = path.read_text("utf-8")
        except FileNotFoundError:
            return lf
        except (OSError, UnicodeDecodeError) as exc:
            raise BadRequest(f"cannot read {LINKS_FILE}: {exc}.") from None
        try:
            doc = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            raise BadRequest(f"{LINKS_FILE} is not valid YAML ({exc}); fix it or restore it from git.") from None
        if not isinstance(doc, dict):
            raise BadRequest(f"{LINKS_FILE} must be a mapping with 'links' and 'reviews'.")
        for n, item in enumerate(doc.get("links") or [], 1):
            lf.links.append(_parse_link(item, n))
        reviews = doc.get("reviews") or {}
        if not isinstance(reviews, dict):
            raise BadRequest(f"{LINKS_FILE}: 'reviews' must map requirement IDs to {{fingerprint, by, at}}.")
        for rid, r in reviews.items():
            if not isinstance(r, dict) or not isinstance(r.get("fingerprint"), str):
                raise BadRequest(f"{LINKS_FILE}: review of {rid} needs a 'fingerprint' string.")
            lf.reviews[str(rid)] = {k: str(v) for k, v in r.items()}
        for n, item in enumerate(doc.get("external") or [], 1):
            lf.external.append(_parse_external(item, n))
        return lf

    def save(self) -> None:
        doc = {
            "version": 1,
            "links": [lk.to_yaml() for lk in sorted(self.links, key=lambda x: (x.requirement, x.kind, x.target, x.line or 0))],
            "reviews": {k: self.reviews[k] for k in sorted(self.reviews)},
        }
        if self.external:  # written only once a sync ran, so files without it stay as they were
            doc["external"] = [x.to_yaml() for x in sorted(self.external, key=lambda x: (x.system, x.project, x.artefact))]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")
        os.replace(tmp, self.path)

    def review(self, req: Requirement, by: str) -> dict[str, str]:
        entry = {"fingerprint": fingerprint(req), "by": by, "at": now_iso()}
        self.reviews[req.id] = entry
        return entry

    def put(self, link: StoredLink) -> StoredLink:
        """Record a decision on a link; a new decision on the same link replaces the old one."""
        self.links = [lk for lk in self.links if lk.key() != link.key()]
        self.links.append(link)
        return link

    def remove(self, requirement: str, kind: str, target: str, line: int | None) -> bool:
        before = len(self.links)
        self.links = [lk for lk in self.links if lk.key() != (requirement, kind, target, line)]
        return len(self.links) != before


def validate_link(requirement: str, kind: str, target: str, line: Any, source: str, state: str) -> None:
    if kind not in LINK_KINDS:
        raise BadRequest(f"link kind {kind!r} is not one of {', '.join(LINK_KINDS)}.", field="kind")
    if source not in LINK_SOURCES:
        raise BadRequest(f"link source {source!r} is not one of {', '.join(LINK_SOURCES)}.", field="source")
    if state not in STORED_STATES:
        raise BadRequest(f"link state {state!r} is not one of {', '.join(STORED_STATES)}.", field="state")
    if not requirement:
        raise BadRequest("a link needs a requirement ID.", field="requirement")
    if not isinstance(target, str) or not target or target.startswith("/") or ".." in target.split("/"):
        raise BadRequest(
            f"link target {target!r} must be a repository-relative path (or an artefact ID), e.g. src/auth/login.py.",
            field="target",
        )
    if line is not None and (not isinstance(line, int) or isinstance(line, bool) or not LINE.lo <= line <= LINE.hi):
        raise BadRequest(f"link line {line!r} must be a positive integer (at most {LINE.hi:,}).", field="line")


def _parse_link(item: Any, n: int) -> StoredLink:
    if not isinstance(item, dict):
        raise BadRequest(f"{LINKS_FILE}: links entry {n} must be a mapping.")
    try:
        link = StoredLink(
            requirement=str(item["requirement"]),
            kind=str(item["kind"]),
            target=str(item["target"]),
            line=item.get("line"),
            source=str(item.get("source", "manual")),
            state=str(item.get("state", "accepted")),
            by=str(item.get("by", "")),
            at=str(item.get("at", "")),
        )
    except KeyError as exc:
        raise BadRequest(f"{LINKS_FILE}: links entry {n} lacks {exc.args[0]!r}.") from None
    try:
        validate_link(link.requirement, link.kind, link.target, link.line, link.source, link.state)
    except BadRequest as exc:
        raise BadRequest(f"{LINKS_FILE}: links entry {n}: {exc.message}") from None
    return link


def _parse_external(item: Any, n: int) -> ExternalLink:
    if not isinstance(item, dict):
        raise BadRequest(f"{LINKS_FILE}: external entry {n} must be a mapping.")
    missing = [k for k in ("artefact", "system", "project", "key") if not item.get(k)]
    if missing:
        raise BadRequest(f"{LINKS_FILE}: external entry {n} lacks {', '.join(repr(k) for k in missing)}.")
    done = item.get("done", False)
    if not isinstance(done, bool):
        raise BadRequest(f"{LINKS_FILE}: external entry {n}: 'done' must be true or false.")
    return ExternalLink(**{k: str(item.get(k) or "") for k in EXTERNAL_FIELDS if k != "done"}, done=done)
