"""The tamper-evident audit chain: canonical form, hashing, verification, signed checkpoints.

``hash = sha256_hex(prev_hash + "\\n" + C)`` where ``C`` is the JSON of
``{"seq","ts","tenant_id","actor","action","resource","outcome","details"}``
with sorted keys, separators ``(",", ":")``, non-ASCII kept, and ``ts`` written
as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.  The first event of a tenant chains from 64
zeros; after a prune it chains from the signed checkpoint's hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, TypeVar

GENESIS_HASH = "0" * 64
OUTCOMES = ("success", "denied", "error")

# json's own C string encoder, as json.dumps(s, ensure_ascii=False) uses it (a test checks equality).
_dumps_str = encode_basestring


# Built once: json.dumps with keyword arguments builds a new encoder per call, which
# costs as much as encoding a small details object.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_details(details: Any) -> str:
    """The canonical JSON text of ``details`` (what is stored and hashed)."""
    return _CANONICAL.encode(details if details is not None else {})


def format_ts(ts: datetime) -> str:
    """UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive values are taken as UTC)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    if ts.year < 1000:  # isoformat would not pad the year like strftime's %Y does here
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.isoformat(timespec="microseconds") + "Z"  # same text as strftime, 10x faster


def ts_text(ts: datetime | None) -> str | None:
    """:func:`format_ts` of an optional timestamp (None stays None): every answer's time fields."""
    return format_ts(ts) if ts else None


def canonical_event(
    seq: int, ts: str, tenant_id: str, actor: str, action: str, resource: str, outcome: str, details_json: str
) -> str:
    """``C`` for one event, with ``details_json`` already canonical.

    Written out by hand rather than through ``json.dumps(sort_keys=True)`` of a
    dict because verification must run at >200k events/s; the key order here
    *is* the sorted order, and a test checks equality with the json.dumps form.
    """
    return (
        '{"action":' + _dumps_str(action)
        + ',"actor":' + _dumps_str(actor)
        + ',"details":' + details_json
        + ',"outcome":' + _dumps_str(outcome)
        + ',"resource":' + _dumps_str(resource)
        + ',"seq":' + str(int(seq))
        + ',"tenant_id":' + _dumps_str(tenant_id)
        + ',"ts":' + _dumps_str(ts)
        + "}"
    )


def chain_hash(prev_hash: str, canonical: str) -> str:
    """Lowercase hex SHA-256 of ``prev_hash + "\\n" + canonical``."""
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditEvent:
    """One row of ``audit_log``."""

    tenant_id: str
    seq: int
    ts: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    details: str  # canonical JSON text
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "ts": format_ts(self.ts),
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "details": json.loads(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def make_event(
    tenant_id: str,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    details: Any,
    prev_hash: str,
) -> AuditEvent:
    """Build the next event of a chain, computing its hash."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    details_json = canonical_details(details)
    c = canonical_event(seq, format_ts(ts), tenant_id, actor, action, resource, outcome, details_json)
    return AuditEvent(tenant_id, seq, ts, actor, action, resource, outcome, details_json, prev_hash, chain_hash(prev_hash, c))


@dataclass
class VerifyResult:
    """Outcome of checking one tenant's chain."""

    tenant_id: str
    checked: int = 0
    first_bad_seq: int | None = None
    reason: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    start_seq: int = 1

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "start_seq": self.start_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
        }


Row = tuple[int, str, str, str, str, str, str, str, str]
"""(seq, ts_text, actor, action, resource, outcome, details_json, prev_hash, hash) in seq order."""


def verify_rows(tenant_id: str, rows: Iterable[Row], start_seq: int = 1, start_hash: str = GENESIS_HASH) -> VerifyResult:
    """Walk a chain; stop at the first event whose seq, link or hash is wrong."""
    res = VerifyResult(tenant_id, start_seq=start_seq, last_seq=start_seq - 1, last_hash=start_hash)
    expect_seq = start_seq
    prev = start_hash
    sha = hashlib.sha256
    checked = 0
    for seq, ts, actor, action, resource, outcome, details, prev_hash, h in rows:
        if seq != expect_seq:
            res.first_bad_seq = expect_seq if seq > expect_seq else seq
            res.reason = f"gap or reorder: expected seq {expect_seq}, found {seq}"
            break
        if prev_hash != prev:
            res.first_bad_seq = seq
            res.reason = "prev_hash does not match the previous event's hash"
            break
        c = canonical_event(seq, ts, tenant_id, actor, action, resource, outcome, details)
        calc = sha((prev + "\n" + c).encode("utf-8")).hexdigest()
        if calc != h:
            res.first_bad_seq = seq
            res.reason = mismatch_reason(prev, h, seq, ts, tenant_id, actor, action, resource, outcome, details)
            break
        prev = h
        expect_seq += 1
        checked += 1
    res.checked = checked
    res.last_seq = expect_seq - 1
    res.last_hash = prev
    return res


def verify_joined(
    tenant_id: str,
    chunks: Iterable[tuple[int, int, bool, str, str]],
    start_seq: int,
    start_hash: str,
    recheck: Any,
    seqs_of: Any,
) -> VerifyResult:
    """Verify a chain delivered as joined chunks (see Storage.audit_chain_joined).

    ``recheck(seq)`` returns ``(ts, actor, action, resource, outcome, details)`` so a
    hash mismatch is decided by the reference canonical form; ``seqs_of(lo, hi)``
    lists the seqs of a chunk that is not gapless, to name the first bad seq.
    """
    res = VerifyResult(tenant_id, start_seq=start_seq, last_seq=start_seq - 1, last_hash=start_hash)
    sha = hashlib.sha256
    prev = start_hash
    expect = start_seq
    for lo, n, gapless, pieces, hashes in _prefetched(chunks):
        if lo != expect:  # the previous range ended short: the events after it are missing
            return _bad(res, expect, f"gap at seq {expect}", prev)
        if gapless and n and _chunk_is_sound(prev, n, pieces, hashes):
            prev = hashes[-64:]
            res.checked += n
            res.last_seq, res.last_hash = lo + n - 1, prev
            expect = lo + n
            continue
        # Something in this chunk does not match: walk it event by event to name the first
        # bad seq (re-checking a hash mismatch with the reference canonical form).
        if not gapless:
            seqs = seqs_of(lo, lo + n + 1)
            first_bad = None
            for s in seqs:
                if s != expect:
                    first_bad = s if s < expect else None  # a duplicate names itself, a gap the missing seq
                    break
                expect += 1
            # Verify the good prefix below, then report the gap.
            n_ok = expect - lo
            bad_seq = first_bad if first_bad is not None else expect
        else:
            n_ok = n
        parts = pieces.split("\x1e") if pieces else []
        for i in range(n_ok):
            p = parts[i]
            h = hashes[64 * i : 64 * i + 64]
            seq = lo + i
            if p[:64] != prev:
                return _bad(res, seq, "prev_hash does not match the previous event's hash", prev)
            if sha(p.encode("utf-8")).hexdigest() != h:
                ts, actor, action, resource, outcome, details = recheck(seq)
                c = canonical_event(seq, ts, tenant_id, actor, action, resource, outcome, details)
                if chain_hash(prev, c) != h:
                    why = mismatch_reason(prev, h, seq, ts, tenant_id, actor, action, resource, outcome, details)
                    return _bad(res, seq, why, prev)
            prev = h
            res.checked += 1
            res.last_seq, res.last_hash = seq, h
        if not gapless:
            return _bad(res, bad_seq, f"gap or duplicate at seq {bad_seq}", prev)
        expect = lo + n
    return res


NOT_CANONICAL = "details is not stored as its canonical JSON text"
CHANGED = "hash does not match the event's contents"


def mismatch_reason(
    prev: str, stored_hash: str, seq: int, ts: str, tenant_id: str, actor: str, action: str, resource: str,
    outcome: str, details_text: str,
) -> str:
    """Why an event's hash does not match: its contents changed, or only its ``details`` text.

    The hash
    covers the canonical JSON text of ``details``, and that exact text is what is stored.
    A stored text that re-encodes to the hashed value but differs from it (``{"role":
    "viewer"}`` with a space) is still a change made to the row, reported at its seq by
    the engine and by the script in docs/schema.md alike.  Why not accept it: DuckDB's
    JSON functions read the first of two repeated keys and Python's json the last, so
    such a text can show auditors' SQL another value than the one the hash covers.
    """
    try:
        canon = canonical_details(json.loads(details_text))
    except (ValueError, TypeError, RecursionError):
        return CHANGED
    c = canonical_event(seq, ts, tenant_id, actor, action, resource, outcome, canon)
    if canon != details_text and chain_hash(prev, c) == stored_hash:
        return NOT_CANONICAL
    return CHANGED


def _chunk_is_sound(prev: str, n: int, pieces: str, hashes: str) -> bool:
    """Every link and every hash of a gapless chunk at once, with one comparison each.

    Why not event by event: per-event Python work (slicing, hex formatting, comparing)
    cost more than the hashing itself.  Here the hashing runs in a list comprehension
    and the checks are two byte-string comparisons; ``False`` sends the chunk to the
    event-by-event walk, which finds and names the first bad event.
    """
    parts = pieces.encode("utf-8").split(b"\x1e")
    if len(parts) != n or len(hashes) != 64 * n:
        return False
    sha = hashlib.sha256
    hb = hashes.encode("ascii")
    links = b"".join([p[:64] for p in parts])
    if links != prev.encode("ascii") + hb[:-64]:
        return False
    # Compared as lowercase hex text, exactly as stored (an upper-cased hash is a change too).
    return b"".join([sha(p).digest() for p in parts]).hex() == hashes


_T = TypeVar("_T")


def _prefetched(items: Iterable[_T], depth: int = 2) -> Iterator[_T]:
    """Yield ``items`` as a background thread produces them, up to ``depth`` ahead.

    Why: the chunks come out of DuckDB, which works without holding the GIL, while
    hashing them holds it; fetching the next chunk while this one is checked
    overlaps the two.  Stopping early (a bad event found) stops the producer and
    closes the source in the producer's thread.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for x in it:
                if not put(("item", x)):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            put(("done", None))

    t = threading.Thread(target=produce, name="musubi-verify-fetch", daemon=True)
    t.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        t.join()


def _bad(res: VerifyResult, seq: int, reason: str, last_hash: str) -> VerifyResult:
    res.first_bad_seq, res.reason = seq, reason
    res.last_hash = last_hash
    return res


# --- signed checkpoints ------------------------------------------------------------------


def load_or_create_signing_key(path: Path) -> Any:
    """The engine's Ed25519 key for checkpoints, created 0600 on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(".tmp")
    fd = __import__("os").open(tmp, 0o101 | 0o1000, 0o600)  # O_WRONLY|O_CREAT|O_TRUNC
    with open(fd, "wb") as f:
        f.write(pem)
    tmp.replace(path)
    return key


def public_key_b64(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def checkpoint_payload(tenant_id: str, seq: int, hash_: str, created_at: str) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return json.dumps(
        {"tenant_id": tenant_id, "seq": seq, "hash": hash_, "created_at": created_at},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def sign_checkpoint(key: Any, tenant_id: str, seq: int, hash_: str, created_at: str) -> str:
    return base64.b64encode(key.sign(checkpoint_payload(tenant_id, seq, hash_, created_at))).decode()


def verify_checkpoint_doc(doc: dict[str, Any]) -> bool:
    """Check an exported checkpoint document offline (public key inside, or pinned by the caller)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["public_key"]))
        pub.verify(
            base64.b64decode(doc["signature"]),
            checkpoint_payload(doc["tenant_id"], int(doc["seq"]), doc["hash"], doc["created_at"]),
        )
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
