"""Quarantine: a journaled group the database refuses is set aside, never retried forever.

Why: the apply thread moves journaled (already acknowledged) groups into
DuckDB in one transaction.  If one group can never apply (a value storage
cannot hold, a duplicate key), retrying that transaction would block every
group behind it: writes acknowledged later would never reach the database, a
graceful stop would time out and every start would fail.  So when storage
*rejects* a transaction (:class:`~core.storage.base.WriteRejected`; a full or
unwritable disk is a plain ``StorageError`` and is retried as before),
:func:`apply_groups` bisects the groups, applying the good ones in their order,
and quarantines each group that fails on its own: its mutations are written to
``$MUSUBI_HOME/quarantine/<group>.json`` (fsynced, with the folder), and only
then is a row written to ``quarantined_groups`` in the same transaction that
moves ``engine_meta.journal_applied`` past the group.  A crash in between
leaves the group unapplied, to be tried (and quarantined) again.

The group is kept whole: applying the rows of a group that did not fail would
record, say, a ``usage.record`` audit event for a ledger row that is not there.
What that means for the engine's state and the audit chain is in
docs/architecture.md ("Quarantined groups").
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.audit import Row, format_ts
from core.engine.journal import APPLIED_KEY, decode, encode
from core.storage.base import Insert, Mutation, Storage, Update, WriteRejected

log = logging.getLogger("musubi.engine.quarantine")

KIND = "musubi.quarantined_group"
Group = tuple[int, list[Mutation]]


@dataclass
class Quarantined:
    """One group set aside: where it is kept and what it held."""

    group: int
    file: str  # relative to $MUSUBI_HOME
    error: str
    mutations: int
    tenants: list[str]
    audit: list[dict[str, Any]]  # per tenant: first_seq, last_seq, prev_hash, last_hash
    actions: list[str]  # the audit actions it held

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "file": self.file,
            "error": self.error,
            "mutations": self.mutations,
            "tenants": self.tenants,
            "audit": self.audit,
        }


@dataclass
class ApplyResult:
    """How far :func:`apply_groups` got."""

    done: int = 0  # leading groups now accounted for in storage (applied or quarantined)
    quarantined: list[Quarantined] = field(default_factory=list)
    error: Exception | None = (
        None  # a failure worth retrying stopped it; groups[done:] are still pending
    )


def audit_ranges(muts: Sequence[Mutation]) -> list[dict[str, Any]]:
    """The audit events in ``muts`` as contiguous seq ranges per tenant."""
    out: list[dict[str, Any]] = []
    last: dict[str, dict[str, Any]] = {}
    for m in muts:
        if not (isinstance(m, Insert) and m.table == "audit_log"):
            continue
        t, seq = str(m.row["tenant_id"]), int(m.row["seq"])
        r = last.get(t)
        if r is not None and r["last_seq"] + 1 == seq:
            r["last_seq"], r["last_hash"] = seq, m.row["hash"]
            continue
        r = {
            "tenant_id": t,
            "first_seq": seq,
            "last_seq": seq,
            "prev_hash": m.row["prev_hash"],
            "last_hash": m.row["hash"],
        }
        last[t] = r
        out.append(r)
    return out


def tenants_of(muts: Sequence[Mutation]) -> list[str]:
    """Every tenant named by a row or a condition of ``muts``."""
    seen: set[str] = set()
    for m in muts:
        parts = (
            [m.row]
            if isinstance(m, Insert)
            else [m.values, m.where]
            if isinstance(m, Update)
            else [m.where]
        )
        for d in parts:
            t = d.get("tenant_id")
            if isinstance(t, str):
                seen.add(t)
    return sorted(seen)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself must survive a power cut
    finally:
        os.close(dfd)


def keep(home: Path, group: Group, error: str, now: datetime) -> Quarantined:
    """Write the group to ``quarantine/<group>.json`` durably; return its description."""
    no, muts = group
    qdir = home / "quarantine"
    qdir.mkdir(mode=0o700, exist_ok=True)
    q = Quarantined(
        no,
        f"quarantine/{no}.json",
        error,
        len(muts),
        tenants_of(muts),
        audit_ranges(muts),
        [str(m.row["action"]) for m in muts if isinstance(m, Insert) and m.table == "audit_log"],
    )
    doc = {
        "kind": KIND,
        "version": 1,
        "quarantined_at": format_ts(now),
        **q.as_json(),
        "journal": json.loads(
            encode(no, muts)
        ),  # the group exactly as journaled (core/engine/journal.py)
    }
    _write_durably(
        home / q.file, (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    )
    return q


def read_group(path: Path) -> Group:
    """The group kept in a quarantine file (e.g. to re-apply it by hand once fixed)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("kind") != KIND:
        raise ValueError(f"{path} is not a quarantined group")
    return decode(json.dumps(doc["journal"]).encode("utf-8"))


def audit_rows(path: Path, tenant: str) -> list[Row]:
    """The tenant's audit events kept in a quarantine file, as rows for ``core.audit.verify_rows``."""
    _no, muts = read_group(path)
    rows: list[Row] = []
    for m in muts:
        if isinstance(m, Insert) and m.table == "audit_log" and m.row["tenant_id"] == tenant:
            r = m.row
            ts = r["ts"] if isinstance(r["ts"], str) else format_ts(r["ts"])
            rows.append(
                (
                    int(r["seq"]),
                    ts,
                    r["actor"],
                    r["action"],
                    r["resource"],
                    r["outcome"],
                    r["details"],
                    r["prev_hash"],
                    r["hash"],
                )
            )
    return rows


def _record(storage: Storage, q: Quarantined, now: datetime) -> None:
    row = {
        "group_no": q.group,
        "quarantined_at": now,
        "file": q.file,
        "error": q.error[:2000],
        "mutations": q.mutations,
        "tenants": q.tenants,
        "audit": json.dumps(q.audit),
    }
    storage.apply([Insert("quarantined_groups", row)], meta={APPLIED_KEY: str(q.group)})


def apply_groups(
    storage: Storage, groups: Sequence[Group], home: Path, now: datetime
) -> ApplyResult:
    """Apply ``groups`` in order, in as few transactions as possible, quarantining rejected ones.

    All groups go in one transaction first.  If storage rejects it, the range is
    split in halves, left first (later groups may build on earlier ones), until
    every rejected group stands alone; that group is quarantined.  A failure
    that is not a rejection (disk full, I/O) stops here with ``error`` set:
    what was applied so far stays applied, the rest is retried later.
    """
    res = ApplyResult()
    stack = [(0, len(groups))] if groups else []
    while stack:
        lo, hi = stack.pop()
        part = groups[lo:hi]
        try:
            storage.apply([m for _n, ms in part for m in ms], meta={APPLIED_KEY: str(part[-1][0])})
        except WriteRejected as exc:
            if hi - lo > 1:
                mid = (lo + hi) // 2
                stack += [(mid, hi), (lo, mid)]  # popped left half first
                continue
            try:
                q = keep(home, part[0], str(exc), now)
                _record(storage, q, now)
            except Exception as exc2:  # could not keep it safely: leave it pending, retry later
                res.error = exc2
                return res
            log.error(
                "quarantined journal group %d (%d mutations, tenants %s): %s; kept in %s",
                q.group,
                q.mutations,
                ", ".join(q.tenants) or "-",
                q.error,
                home / q.file,
            )
            res.quarantined.append(q)
        except Exception as exc:
            res.error = exc
            return res
        res.done = hi
    return res
