"""What ``musubi sync`` wants in a tracker: work items from a Trace, and the three-way comparison.

Three fingerprints decide what happens to each artefact (docs/integrations.md#sync):
``pushed`` (what musubi last wrote, stored in links.yml), the artefact's text now, and the
remote text now against ``remote`` (the remote text as read back after musubi's last write).

| local changed | remote changed | action |
|---|---|---|
| no | no | ``unchanged`` (status read back only) |
| yes | no | ``update`` |
| no | yes | ``remote_edited``: kept, reported, becomes the new baseline |
| yes | yes | ``conflict``: reported, nothing written until resolved (``--resolve ID=local|remote``) |

Nothing is ever deleted: an artefact gone from the specs is reported ``orphaned``; a remote item
gone from the tracker is a ``conflict`` (``remote_missing``) until ``--resolve ID=local`` re-creates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.integrations.contracts import KINDS, RemoteItem, WorkItem
from core.trace.links import ExternalLink
from core.trace.matrix import Trace, natural_key

__all__ = ["KINDS", "Plan", "Step", "decide", "work_items"]


def work_items(t: Trace, include: tuple[str, ...] = KINDS, repo_url: str | None = None) -> list[WorkItem]:
    """Requirements first (they are the parents), then tasks, each in natural ID order."""
    items: list[WorkItem] = []
    served: dict[str, str] = {}  # task -> first requirement citing it
    for rid, row in t.rows.items():
        for lk in row.links["tasks"]:
            if lk.kind == "task" and lk.counts():
                served.setdefault(lk.target, rid)
    base = repo_url.rstrip("/") if repo_url else None
    if "requirement" in include:
        for rid, row in t.rows.items():
            r = row.req
            lines = [r.statement] if r.statement else []
            if r.criteria:
                lines.append("Acceptance criteria:")
                lines += [f"- {c}" for c in r.criteria]
            items.append(WorkItem(rid, "requirement", r.title or rid, "\n".join(lines), None, f"{r.path}:{r.line}",
                                  f"{base}/{r.path}#L{r.line}" if base else None))
    if "task" in include:
        for tid in sorted(t.tasks, key=natural_key):
            task = t.tasks[tid]
            parent = served.get(tid) if "requirement" in include else None
            items.append(WorkItem(tid, "task", task.title or tid, task.title or "", parent, f"{task.path}:{task.line}",
                                  f"{base}/{task.path}#L{task.line}" if base else None))
    return items


@dataclass
class Step:
    """The decision for one artefact."""

    action: str  # create | update | unchanged | remote_edited | conflict | adopt
    item: WorkItem
    remote: RemoteItem | None = None
    stored: ExternalLink | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"artefact": self.item.artefact, "kind": self.item.kind, "action": self.action,
                               "title": self.item.title}
        key = self.remote.key if self.remote else (self.stored.key if self.stored else None)
        if key:
            out["key"] = key
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    orphaned: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)


def decide(items: list[WorkItem], stored: dict[str, ExternalLink], remote: dict[str, list[RemoteItem]],
           resolve: dict[str, str] | None = None) -> Plan:
    """The plan: one :class:`Step` per item, plus what exists only on one side."""
    resolve = resolve or {}
    plan = Plan()
    wanted = {i.artefact for i in items}
    for item in items:
        found = remote.get(item.artefact, [])
        st = stored.get(item.artefact)
        if len(found) > 1:
            keys = [r.key for r in found]
            plan.duplicates.append({"artefact": item.artefact, "keys": keys})
            plan.steps.append(Step("conflict", item, None, st,
                                   f"{len(found)} remote items carry this ID ({', '.join(keys)}); "
                                   "close all but one, then sync again"))
            continue
        rem = found[0] if found else None
        choice = resolve.get(item.artefact)
        fp = item.fingerprint()
        if rem is None:
            if st is None or choice == "local":
                plan.steps.append(Step("create", item, None, st))
            else:
                plan.steps.append(Step("conflict", item, None, st,
                                       f"{st.key} is gone from the tracker (deleted, moved or its marker removed); "
                                       f"re-create it with --resolve {item.artefact}=local"))
            continue
        if st is None:
            # Made by an earlier sync whose links.yml entry was lost (a crash between the write and the save,
            # or a fresh clone): adopt it when it says what we would write, else let a person decide.
            pushed = str(rem.extra.get("pushed", ""))
            if pushed == fp or choice == "remote":
                plan.steps.append(Step("adopt", item, rem, None))
            elif choice == "local":
                plan.steps.append(Step("update", item, rem, None, "adopted and overwritten (--resolve local)"))
            else:
                plan.steps.append(Step("conflict", item, rem, None,
                                       f"{rem.key} carries this ID; links.yml has no record of it, its text differs; "
                                       f"keep it with --resolve {item.artefact}=remote or overwrite with =local"))
            continue
        local_changed = st.pushed != fp
        remote_changed = st.remote != rem.fingerprint
        if choice == "local" and (local_changed or remote_changed):
            plan.steps.append(Step("update", item, rem, st, "remote edits overwritten (--resolve local)"))
        elif choice == "remote" and (local_changed or remote_changed):
            plan.steps.append(Step("adopt", item, rem, st, "remote text kept as the baseline (--resolve remote)"))
        elif local_changed and remote_changed:
            plan.steps.append(Step("conflict", item, rem, st,
                                   f"both the spec and {rem.key} changed since the last sync; nothing written. "
                                   f"Choose with --resolve {item.artefact}=local or =remote"))
        elif local_changed:
            plan.steps.append(Step("update", item, rem, st))
        elif remote_changed:
            plan.steps.append(Step("remote_edited", item, rem, st, f"{rem.key} was edited in the tracker; kept"))
        else:
            plan.steps.append(Step("unchanged", item, rem, st))
    for aid, st in stored.items():
        if aid not in wanted:
            plan.orphaned.append({"artefact": aid, "key": st.key, "url": st.url,
                                  "reason": "no longer in the specs; the remote item was left alone"})
    for aid, rems in remote.items():
        if aid not in wanted and aid not in stored:
            plan.orphaned += [{"artefact": aid, "key": r.key, "url": r.url,
                               "reason": "carries musubi's marker for an ID not in the specs"} for r in rems]
    return plan
