"""The audit service: list, verify, export, prune with signed checkpoints (``engine.audit_ops``).

Appending an event is the op runner's (:meth:`core.engine.runner.OpRunner.audit`);
this service reads, verifies and exports the chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from core.api.auditfilter import AuditFilter, check_outcome, parse_when
from core.audit import (
    GENESIS_HASH,
    VerifyResult,
    format_ts,
    public_key_b64,
    sign_checkpoint,
    ts_text,
    verify_checkpoint_doc,
    verify_joined,
    verify_rows,
)
from core.engine.access import Caller
from core.engine.jsontext import EventList
from core.engine.quarantine import audit_rows
from core.engine.runner import OpRunner
from core.errors import BadRequest, Conflict
from core.rbac import SYSTEM_LOG
from core.storage.base import AuditQuery, Delete, Insert

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
MAX_LIST = 10_000


@dataclass
class ExportContent:
    """An export on its way to the client: an open (already unlinked) file and what it holds."""

    file: IO[bytes]
    size: int
    events: int
    format: str


def _fail(res: VerifyResult, seq: int, reason: str) -> VerifyResult:
    res.first_bad_seq, res.reason = seq, reason
    return res


class AuditService:
    """Reading, verifying, exporting and pruning the audit chains."""

    def __init__(self, runner: OpRunner) -> None:
        self.r = runner
        self._locks: dict[str, asyncio.Lock] = {}
        self._prunes: dict[tuple[str, datetime], asyncio.Future[dict[str, Any]]] = {}

    def audit_query(self, ctx: Caller, f: dict[str, Any]) -> AuditQuery:
        outcome = check_outcome(f.get("outcome"))
        limit = f.get("limit")
        if limit is not None:
            try:
                limit = int(limit)
            except (TypeError, ValueError):
                raise BadRequest(f"limit {limit!r} is not a whole number.", field="limit") from None
            if not 1 <= limit <= MAX_LIST:
                raise BadRequest(f"limit {limit} is out of range: give 1..{MAX_LIST}.", field="limit")
        since, until = parse_when(f.get("since"), "since"), parse_when(f.get("until"), "until")
        if since and until and since >= until:
            raise BadRequest("--since must be before --until.", field="since")
        after = f.get("after_seq")
        if after not in (None, ""):
            try:
                after = int(after)
            except (TypeError, ValueError):
                raise BadRequest(f"after_seq {after!r} is not a whole number.", field="after_seq") from None
        else:
            after = None
        asc = f.get("ascending", False)
        if isinstance(asc, str):
            if asc.lower() not in ("", "0", "1", "true", "false", "yes", "no"):
                raise BadRequest(f"ascending {asc!r} is not a boolean; use true or false.", field="ascending")
            asc = asc.lower() in ("1", "true", "yes")
        return AuditQuery(
            ctx.tenant, since, until, f.get("actor") or None, f.get("action") or None, outcome, limit,
            after, descending=not bool(asc),
        )

    async def _system_log(self, ctx: Caller, action: str, flag: object) -> Caller | None:
        """With ``flag``, the context reading the system log (system owners only), else None."""
        if isinstance(flag, str):
            if flag.lower() not in ("", "0", "1", "true", "false"):
                raise BadRequest(f"system {flag!r} is not a boolean; use true or false.", field="system")
            flag = flag.lower() in ("1", "true")
        if not isinstance(flag, bool):
            raise BadRequest("system must be true or false.", field="system")
        if not flag:
            return None
        await self.r.run(ctx, action, f"audit:{SYSTEM_LOG}", lambda: self.r.require_system(ctx))
        return Caller(ctx.real_user, ctx.user, SYSTEM_LOG, None)

    async def audit_list(self, ctx: Caller, filters: dict[str, Any]) -> list[dict[str, Any]] | EventList:
        filters = dict(filters)
        system = filters.pop("system", False)
        q = self.audit_query(ctx, filters)
        if q.limit is None:
            q.limit = 100
        log_ctx = await self._system_log(ctx, "audit.list", system)
        if log_ctx is not None:
            q.tenant_id = log_ctx.tenant
        else:
            await self.r.run(ctx, "audit.list", "audit", lambda: self.r.require(ctx, "audit.read", read=True))
        hit = self._recent_matches(q)
        if hit is not None:
            return hit
        return await self.r.read(self.r.storage.audit_list, q)

    def _recent_matches(self, q: AuditQuery) -> EventList | None:
        """Answer a newest-first listing from the in-memory tail when it provably holds the answer."""
        buf = self.r.recent.get(q.tenant_id)
        if not q.descending or not buf or not q.limit:
            return None
        flt = AuditFilter(q.actor, q.action, q.outcome, ts_text(q.since), ts_text(q.until))
        out = EventList()  # answered by joining the events' cached JSON texts
        for ev in reversed(buf):
            if q.after_seq is not None and ev["seq"] <= q.after_seq:
                return out  # everything newer than after_seq was in the buffer
            if flt and not flt.matches(ev):
                continue
            out.append(ev)
            if len(out) >= q.limit:
                return out
        if q.after_seq is not None and buf[0]["seq"] <= q.after_seq + 1:
            return out
        if buf[0]["seq"] == self.r.state.pruned_through.get(q.tenant_id, 0) + 1:
            return out  # the buffer holds the whole chain
        return None  # older matches may sit in the table

    def _check_anchor(
        self, tenant: str, anchor: dict[str, Any], out: dict[str, Any], quarantined: dict[int, str] | None = None
    ) -> None:
        """Compare the chain with an exported checkpoint kept elsewhere (catches a cut-off tail)."""
        if not isinstance(anchor, dict) or not verify_checkpoint_doc(anchor):
            raise BadRequest("the anchor is not a valid signed checkpoint document (musubi audit checkpoint --export).", field="anchor")
        if anchor.get("tenant_id") != tenant:
            raise BadRequest(f"the anchor is for tenant {anchor.get('tenant_id')!r}, not {tenant!r}.", field="anchor")
        seq, h = int(anchor["seq"]), str(anchor["hash"])
        out["anchor_seq"] = seq
        if anchor.get("public_key") != public_key_b64(self.r.signing_key):
            out.update(ok=False, first_bad_seq=out.get("first_bad_seq") or seq, reason="the anchor was signed by another engine key")
            return
        if not out["ok"]:
            return
        if seq > out["last_seq"]:
            out.update(ok=False, first_bad_seq=out["last_seq"] + 1,
                       reason=f"events {out['last_seq'] + 1}..{seq} existed when the anchor was signed and are gone")
            return
        if seq == 0:
            return
        cps = {int(c["seq"]): c["hash"] for c in self.r.storage.checkpoints(tenant)}
        if seq in cps:
            stored = cps[seq]
        elif seq < out["start_seq"]:
            return  # pruned; the checkpoint chain covers it
        elif quarantined and seq in quarantined:
            stored = quarantined[seq]  # kept in a quarantine file, checked by the walk
        else:
            stored = self.r.storage.audit_chain_hash(tenant, seq)
        if stored != h:
            out.update(ok=False, first_bad_seq=seq, reason="the event at the anchor's seq has a different hash than when it was signed")

    def _verify_sync(self, tenant: str, anchor: dict[str, Any] | None = None, acked: int | None = None) -> dict[str, Any]:
        cps = self.r.storage.checkpoints(tenant)
        start_seq, start_hash = 1, GENESIS_HASH
        cp_ok = True
        pub = public_key_b64(self.r.signing_key)
        for cp in cps:
            doc = {**cp, "tenant_id": tenant}
            if not verify_checkpoint_doc(doc) or cp["public_key"] != pub:
                cp_ok = False
        if cps:
            start_seq, start_hash = int(cps[-1]["seq"]) + 1, cps[-1]["hash"]
        res, bridged, hashes = self._walk(tenant, start_seq, start_hash)
        out = res.as_json()
        out["start_seq"] = start_seq
        out["quarantined"] = bridged
        out["checkpoints"] = len(cps)
        out["checkpoint_signatures_ok"] = cp_ok
        # ``acked``: the newest event acknowledged before this verification began, so in the
        # table now.  Not ``state.head``: an operation running meanwhile moves the head before
        # its write is journaled, which read as "missing" under concurrent writes.
        head_seq = acked if acked is not None else res.last_seq
        if res.ok and res.last_seq < head_seq:
            # Events the engine wrote are missing from the end of the table.
            out.update(ok=False, first_bad_seq=res.last_seq + 1, reason=f"events {res.last_seq + 1}..{head_seq} are missing")
        if not cp_ok and out["ok"]:
            out.update(ok=False, first_bad_seq=start_seq, reason="a checkpoint signature does not verify")
        out["anchor_seq"] = None
        if anchor is not None:
            self._check_anchor(tenant, anchor, out, hashes)
        return out

    def _walk(self, tenant: str, seq: int, prev: str) -> tuple[VerifyResult, list[dict[str, Any]], dict[int, str]]:
        """Verify the table's chain from ``seq``, bridging the gaps quarantined groups left.

        Events of a quarantined journal group never reached the table, but the events
        after them chain on their hashes.  Where the table lacks exactly the events a
        quarantine row names, they are re-checked from its file (link and hashes) and
        the walk goes on after them; each such gap is reported under ``quarantined``.
        A file that is missing or does not verify fails the walk at the gap.
        """
        ranges = {
            int(r["first_seq"]): (q, r) for q in self.r.storage.quarantined(tenant) for r in q["audit"] if r["tenant_id"] == tenant
        }
        bridged: list[dict[str, Any]] = []
        hashes: dict[int, str] = {}
        checked = 0
        while True:
            res = verify_joined(
                tenant, self.r.storage.audit_chain_joined(tenant, seq), seq, prev,
                lambda s: self.r.storage.audit_row(tenant, s),
                lambda lo, hi: self.r.storage.audit_seqs(tenant, lo, hi),
            )
            checked += res.checked
            res.checked = checked
            nxt = res.last_seq + 1
            # Bridge only where the walk stopped for want of the next event (not a bad one).
            hit = ranges.get(nxt) if res.first_bad_seq in (None, nxt) else None
            if hit is None or self.r.storage.audit_chain_hash(tenant, nxt) is not None:
                return res, bridged, hashes
            q, r = hit
            first, last = int(r["first_seq"]), int(r["last_seq"])
            gap = {"first_seq": first, "last_seq": last, "group": int(q["group_no"]), "file": q["file"], "error": q["error"]}
            where = f"events {first}..{last} were set aside with quarantined journal group {q['group_no']} ({q['file']})"
            try:
                rows = [row for row in audit_rows(self.r.paths.home / q["file"], tenant) if first <= row[0] <= last]
            except (OSError, ValueError, KeyError) as exc:
                return _fail(res, nxt, f"{where}, and that file cannot be read ({type(exc).__name__}: {exc})"), bridged, hashes
            vr = verify_rows(tenant, rows, first, res.last_hash)
            if not vr.ok or vr.last_seq != last or vr.last_hash != r["last_hash"]:
                why = vr.reason or "it does not hold them all"
                return _fail(res, vr.first_bad_seq or nxt, f"{where}, and the file does not verify: {why}"), bridged, hashes
            checked += vr.checked
            hashes.update({row[0]: row[8] for row in rows})
            bridged.append(gap)
            seq, prev = last + 1, vr.last_hash

    async def audit_verify(self, ctx: Caller, anchor: dict[str, Any] | None = None, system: object = False) -> dict[str, Any]:
        log_ctx = await self._system_log(ctx, "audit.verify", system)
        if log_ctx is None:
            await self.r.run(ctx, "audit.verify", "audit", lambda: self.r.require(ctx, "audit.read", read=True))
        tenant = (log_ctx or ctx).tenant
        buf = self.r.recent.get(tenant)  # acknowledged events of this engine run, newest last
        acked = int(buf[-1]["seq"]) if buf else None
        # Wait until the table holds every event acknowledged so far.
        return await self.r.read(self._verify_sync, tenant, anchor, acked)

    async def audit_export(
        self, ctx: Caller, fmt: str, filters: dict[str, Any], destination: str | None, *, dry_run: bool = False
    ) -> ExportContent | None:
        """The matching events as file content for the client to write (the engine writes no file of the caller's).

        The permission is checked before anything else about the request that could
        depend on the disk, so a refusal never says what exists; ``destination`` is
        only recorded (it is where the client says it will write, docs/api.md#export-files).
        With ``dry_run`` only the checks run: the client asks before it opens its file.
        """
        if fmt not in EXPORT_FORMATS:
            raise BadRequest(f"unknown export format {fmt!r}: use {', '.join(EXPORT_FORMATS)}.", field="format")
        q = self.audit_query(ctx, filters)
        await self.r.run(ctx, "audit.export", "audit", lambda: self.r.require(ctx, "audit.export", read=True))
        if dry_run:
            return None
        tmp = self.scratch_file(f"audit-export.{fmt}")
        try:
            n = await self.r.read(self.r.storage.audit_export, q, fmt, tmp)
            f = open(tmp, "rb")  # noqa: SIM115 - handed to the streaming response, which closes it
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()  # the open descriptor keeps the content until it is streamed
        size = os.fstat(f.fileno()).st_size
        try:
            await self.r.run(ctx, "audit.export", "audit", lambda: self.r.audit(
                ctx.tenant, ctx, "audit.export", "audit",
                details={"format": fmt, "events": n, "bytes": size, "path": destination}))
        except BaseException:
            f.close()
            raise
        return ExportContent(f, size, n, fmt)

    def scratch_file(self, name: str) -> Path:
        """A new path in the engine's private scratch folder (0700, emptied at each start)."""
        d = self.r.paths.scratch
        d.mkdir(mode=0o700, exist_ok=True)
        return d / f"{secrets.token_hex(8)}-{name}"

    def _audit_lock(self, tenant: str) -> asyncio.Lock:
        """Serialises prunes and checkpoints of one tenant (each reads, then writes on what it read)."""
        return self._locks.setdefault(tenant, asyncio.Lock())

    async def audit_prune(self, ctx: Caller, before: object) -> dict[str, Any]:
        """Prune events before ``before``; concurrent prunes of a tenant with the same date are one prune.

        Why serialised: a prune reads the last event to remove and the newest checkpoint,
        then writes a checkpoint on what it read.  Two prunes interleaving there both wrote
        a checkpoint for the same seq (a duplicate key that the database refused).  Now
        prunes of a tenant take turns, and one that arrives while a prune with the same
        date is running gets that prune's answer instead of running again.
        """
        when = parse_when(before, "before")
        if when is None:
            raise BadRequest("--before DATE is required (UTC), e.g. --before 2026-01-01.", field="before")
        if when > self.r.now():
            raise BadRequest(f"--before {before} is in the future; prune only removes past events.", field="before")
        await self.r.run(ctx, "audit.prune", "audit", lambda: self.r.require(ctx, "tenant.manage"))
        inflight = self._prunes
        key = (ctx.tenant, when)
        running = inflight.get(key)
        if running is not None:
            return dict(await asyncio.shield(running))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        inflight[key] = fut
        try:
            async with self._audit_lock(ctx.tenant):
                result = await self._prune(ctx, when)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            inflight.pop(key, None)
        fut.set_result(result)
        return dict(result)

    async def _prune(self, ctx: Caller, when: datetime) -> dict[str, Any]:
        last = await self.r.read(self.r.storage.last_event_before, ctx.tenant, when)
        existing = await self.r.read(self.r.storage.checkpoints, ctx.tenant)
        if last is None or (existing and last[0] <= int(existing[-1]["seq"])):
            raise Conflict(f"no audit events before {format_ts(when)} to prune in tenant {ctx.tenant!r}.")
        seq, h = last
        count = await self.r.read(self.r.storage.count_events, ctx.tenant, seq)

        def op() -> dict[str, Any]:
            now = self.r.now()
            created = format_ts(now)
            sig = sign_checkpoint(self.r.signing_key, ctx.tenant, seq, h, created)
            self.r.write(
                Delete("audit_log", {"tenant_id": ctx.tenant, "seq": ("<=", seq)}),
                Insert("audit_checkpoints", {"tenant_id": ctx.tenant, "seq": seq, "hash": h, "created_at": now, "pruned_before": when, "public_key": public_key_b64(self.r.signing_key), "signature": sig}),
            )
            self.r.audit(ctx.tenant, ctx, "audit.prune", "audit", details={"before": format_ts(when), "last_pruned_seq": seq, "last_pruned_hash": h, "events_removed": count})
            self.r.state.pruned_through[ctx.tenant] = seq
            buf = self.r.recent.get(ctx.tenant)
            while buf and buf[0]["seq"] <= seq:
                buf.popleft()
            return {"tenant": ctx.tenant, "pruned_through_seq": seq, "checkpoint_hash": h, "events_removed": count, "before": format_ts(when)}

        return await self.r.run(ctx, "audit.prune", "audit", op)

    async def audit_checkpoint(self, ctx: Caller, destination: str | None, *, dry_run: bool = False) -> dict[str, Any]:
        """Sign the current head as an offline-verifiable document (the client writes any file)."""
        await self.r.run(ctx, "audit.checkpoint", "audit", lambda: self.r.require(ctx, "audit.export", read=True))
        if dry_run:
            return {"ok": True, "dry_run": True}
        async with self._audit_lock(ctx.tenant):  # not in the middle of a prune of the tenant
            return await self._checkpoint(ctx, destination)

    async def _checkpoint(self, ctx: Caller, destination: str | None) -> dict[str, Any]:
        await self.r.committer.sync()
        seq, h = self.r.state.head(ctx.tenant)
        created = format_ts(self.r.now())
        doc = {
            "kind": "musubi.audit.checkpoint",
            "version": 1,
            "tenant_id": ctx.tenant,
            "seq": seq,
            "hash": h,
            "created_at": created,
            "public_key": public_key_b64(self.r.signing_key),
            "algorithm": "Ed25519",
            "signature": sign_checkpoint(self.r.signing_key, ctx.tenant, seq, h, created),
        }
        if destination is not None:
            # The client writes the file; the export is on record with where it said it would write.
            details = {"seq": seq, "path": destination}

            def record() -> None:
                self.r.audit(ctx.tenant, ctx, "audit.checkpoint", "audit", details=details)

            await self.r.run(ctx, "audit.checkpoint", "audit", record)
        return doc
