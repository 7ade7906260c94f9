"""core.audit: canonical form, hash chaining, verification and signed checkpoints."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.audit import (
    GENESIS_HASH,
    AuditEvent,
    canonical_details,
    canonical_event,
    chain_hash,
    format_ts,
    load_or_create_signing_key,
    make_event,
    public_key_b64,
    sign_checkpoint,
    verify_checkpoint_doc,
    verify_rows,
)

TRICKY = [
    "plain",
    "",
    "Grüße, Zürich — ñ",
    "日本語のテキスト",
    'say "hi" to \'them\'',
    "back\\slash and /slash",
    "tab\tnewline\ncarriage\rnull\x00bell\x07esc\x1b del\x7f",
    "unit sep \x1f and \x0b\x0c",
    "emoji 🎉👩‍👩‍👧 and flags 🇯🇵",
    "line sep \u2028 para sep \u2029",
    "bom \ufeff nbsp \u00a0 zwj \u200d",
    "</script><!-- & ' \" -->",
    "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]


def reference(seq: int, ts: str, tenant: str, actor: str, action: str, resource: str, outcome: str, details: object) -> str:
    """The issue's definition of C, spelled with json.dumps."""
    return json.dumps(
        {
            "seq": seq,
            "ts": ts,
            "tenant_id": tenant,
            "actor": actor,
            "action": action,
            "resource": resource,
            "outcome": outcome,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


@pytest.mark.parametrize("s", TRICKY)
def test_canonical_event_equals_json_dumps_for_tricky_strings(s: str) -> None:
    details = {"reason": s, s or "k": [s, 1, 2.5, None, True], "nested": {"z": s, "a": {"q": s}}}
    ts = "2026-01-02T03:04:05.000006Z"
    got = canonical_event(7, ts, "t-1", "actor " + s, "act." + s, "res:" + s, "success", canonical_details(details))
    want = reference(7, ts, "t-1", "actor " + s, "act." + s, "res:" + s, "success", details)
    assert got == want


def test_canonical_event_equals_json_dumps_randomised() -> None:
    rng = random.Random(20260102)
    alphabet = [chr(c) for c in range(0, 0x250)] + ["🎉", "日", "\u2028", '"', "\\", "\ufeff", "𝔘"]
    for _ in range(500):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(5)]
        details = {parts[0]: parts[1], "n": rng.randint(-(10**12), 10**12), "l": parts[2:]}
        seq = rng.randint(1, 10**9)
        ts = format_ts(datetime(2026, 1, 1) + timedelta(microseconds=rng.randint(0, 10**12)))
        got = canonical_event(seq, ts, "t", parts[3], parts[4], parts[0], "denied", canonical_details(details))
        assert got == reference(seq, ts, "t", parts[3], parts[4], parts[0], "denied", details)


def test_canonical_keeps_non_ascii_and_has_no_spaces() -> None:
    c = canonical_event(1, "2026-01-01T00:00:00.000000Z", "t", "zoë", "a", "r", "success", canonical_details({"b": 1, "a": "ü"}))
    assert "zoë" in c and "\\u" not in c
    assert " " not in c
    assert c.index('"action"') < c.index('"actor"') < c.index('"details"') < c.index('"ts"')
    assert canonical_details({"b": 1, "a": "ü"}) == '{"a":"ü","b":1}'
    assert canonical_details(None) == "{}"


def test_format_ts_is_utc_microseconds_with_z() -> None:
    assert format_ts(datetime(2026, 3, 4, 5, 6, 7)) == "2026-03-04T05:06:07.000000Z"
    assert format_ts(datetime(2026, 3, 4, 5, 6, 7, 89)) == "2026-03-04T05:06:07.000089Z"
    aware = datetime(2026, 3, 4, 7, 6, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(aware) == "2026-03-04T05:06:07.123456Z"
    assert format_ts(aware.astimezone(UTC)) == "2026-03-04T05:06:07.123456Z"


def test_chain_hash_is_sha256_of_prev_newline_c() -> None:
    c = '{"a":1}'
    assert chain_hash(GENESIS_HASH, c) == hashlib.sha256((GENESIS_HASH + "\n" + c).encode()).hexdigest()
    assert GENESIS_HASH == "0" * 64
    h = chain_hash("ab" * 32, "ü")
    assert h == hashlib.sha256(("ab" * 32 + "\nü").encode("utf-8")).hexdigest()
    assert h == h.lower() and len(h) == 64


def build_chain(n: int, tenant: str = "acme", start_seq: int = 1, start_hash: str = GENESIS_HASH) -> list[AuditEvent]:
    out = []
    prev = start_hash
    t0 = datetime(2026, 12, 31, 23, 59, 59, 999990)
    for i in range(n):
        seq = start_seq + i
        ev = make_event(
            tenant, seq, t0 + timedelta(microseconds=3 * i), f"user{i % 3}", "member.add", f"member:ü{i}",
            "success" if i % 4 else "denied", {"role": "viewer", "i": i, "note": TRICKY[i % len(TRICKY)]}, prev,
        )
        out.append(ev)
        prev = ev.hash
    return out


def rows(events: list[AuditEvent]) -> list[tuple]:
    return [
        (e.seq, format_ts(e.ts), e.actor, e.action, e.resource, e.outcome, e.details, e.prev_hash, e.hash)
        for e in events
    ]


def test_make_event_chains_from_genesis_and_links() -> None:
    evs = build_chain(5)
    assert evs[0].prev_hash == GENESIS_HASH
    for a, b in zip(evs, evs[1:], strict=False):
        assert b.prev_hash == a.hash
    e = evs[2]
    want_c = reference(e.seq, format_ts(e.ts), e.tenant_id, e.actor, e.action, e.resource, e.outcome, json.loads(e.details))
    assert e.hash == hashlib.sha256((e.prev_hash + "\n" + want_c).encode("utf-8")).hexdigest()
    assert e.as_json()["ts"] == format_ts(e.ts) and e.as_json()["details"]["i"] == 2


def test_make_event_rejects_unknown_outcome() -> None:
    with pytest.raises(ValueError):
        make_event("t", 1, datetime(2026, 1, 1), "a", "x", "r", "maybe", {}, GENESIS_HASH)


def test_verify_rows_ok() -> None:
    evs = build_chain(20)
    res = verify_rows("acme", rows(evs))
    assert res.ok and res.checked == 20 and res.last_seq == 20 and res.last_hash == evs[-1].hash
    assert res.as_json()["ok"] is True and res.as_json()["first_bad_seq"] is None


def test_verify_rows_empty_chain() -> None:
    res = verify_rows("acme", [])
    assert res.ok and res.checked == 0 and res.last_seq == 0 and res.last_hash == GENESIS_HASH


@pytest.mark.parametrize("col", [2, 3, 4, 5, 6, 1])
def test_verify_rows_detects_a_modified_field(col: int) -> None:
    r = rows(build_chain(10))
    row = list(r[6])
    row[col] = row[col].replace("0", "1", 1) if col == 1 else row[col] + "x" if col != 6 else '{"role":"owner"}'
    r[6] = tuple(row)
    res = verify_rows("acme", r)
    assert not res.ok and res.first_bad_seq == 7 and res.checked == 6
    assert "hash does not match" in (res.reason or "")


def test_verify_rows_detects_wrong_tenant() -> None:
    res = verify_rows("other", rows(build_chain(3)))
    assert not res.ok and res.first_bad_seq == 1


def test_verify_rows_detects_a_recomputed_hash_with_stale_successor() -> None:
    # An attacker who rewrites row 4 *and* its hash still breaks row 5's prev_hash link.
    evs = build_chain(8)
    e = evs[3]
    forged = make_event(e.tenant_id, e.seq, e.ts, "mallory", e.action, e.resource, e.outcome, json.loads(e.details), e.prev_hash)
    r = rows(evs)
    r[3] = rows([forged])[0]
    res = verify_rows("acme", r)
    assert res.first_bad_seq == 5 and "prev_hash" in (res.reason or "")


def test_verify_rows_detects_gap() -> None:
    r = rows(build_chain(10))
    del r[4]  # seq 5
    res = verify_rows("acme", r)
    assert not res.ok and res.first_bad_seq == 5 and res.checked == 4
    assert "gap" in (res.reason or "")


def test_verify_rows_detects_reorder() -> None:
    r = rows(build_chain(10))
    r[3], r[4] = r[4], r[3]
    res = verify_rows("acme", r)
    assert not res.ok and res.first_bad_seq == 4


def test_verify_rows_detects_duplicate() -> None:
    r = rows(build_chain(6))
    r.insert(3, r[2])
    res = verify_rows("acme", r)
    assert not res.ok and res.first_bad_seq == 3


def test_verify_rows_detects_bad_prev_hash() -> None:
    evs = build_chain(6)
    r = rows(evs)
    row = list(r[2])
    row[7] = "f" * 64
    r[2] = tuple(row)
    res = verify_rows("acme", r)
    assert res.first_bad_seq == 3 and "prev_hash" in (res.reason or "")


def test_verify_rows_continues_from_a_checkpoint() -> None:
    evs = build_chain(10)
    cut = evs[3]  # pruned through seq 4
    res = verify_rows("acme", rows(evs[4:]), start_seq=5, start_hash=cut.hash)
    assert res.ok and res.checked == 6 and res.start_seq == 5 and res.last_seq == 10
    bad = verify_rows("acme", rows(evs[4:]), start_seq=5, start_hash=GENESIS_HASH)
    assert bad.first_bad_seq == 5
    off = verify_rows("acme", rows(evs[4:]), start_seq=4, start_hash=cut.hash)
    assert off.first_bad_seq == 4


# -- checkpoints ---------------------------------------------------------------------------


def make_doc(key_path: Path) -> dict:
    key = load_or_create_signing_key(key_path)
    created = "2026-05-06T07:08:09.000010Z"
    return {
        "tenant_id": "acmé",
        "seq": 42,
        "hash": "ab" * 32,
        "created_at": created,
        "public_key": public_key_b64(key),
        "signature": sign_checkpoint(key, "acmé", 42, "ab" * 32, created),
    }


def test_signing_key_created_private_and_reloaded(tmp_path: Path) -> None:
    p = tmp_path / "audit-signing.key"
    k1 = load_or_create_signing_key(p)
    assert p.stat().st_mode & 0o777 == 0o600
    k2 = load_or_create_signing_key(p)
    assert public_key_b64(k1) == public_key_b64(k2)
    other = load_or_create_signing_key(tmp_path / "other.key")
    assert public_key_b64(other) != public_key_b64(k1)


def test_signing_key_rejects_non_ed25519(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p = tmp_path / "k"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p.write_bytes(pem)
    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_signing_key(p)


def test_checkpoint_doc_verifies(tmp_path: Path) -> None:
    assert verify_checkpoint_doc(make_doc(tmp_path / "k"))


@pytest.mark.parametrize(
    "field,value",
    [
        ("tenant_id", "acme"),
        ("seq", 43),
        ("hash", "ab" * 31 + "ac"),
        ("created_at", "2026-05-06T07:08:09.000011Z"),
        ("signature", None),
        ("public_key", None),
    ],
)
def test_checkpoint_doc_tamper_fails(tmp_path: Path, field: str, value: object) -> None:
    doc = make_doc(tmp_path / "k")
    bad = copy.deepcopy(doc)
    if value is None:
        # Flip one byte of the signature, or swap in another key.
        if field == "signature":
            import base64

            sig = bytearray(base64.b64decode(doc["signature"]))
            sig[5] ^= 1
            bad["signature"] = base64.b64encode(bytes(sig)).decode()
        else:
            bad["public_key"] = public_key_b64(load_or_create_signing_key(tmp_path / "k2"))
    else:
        bad[field] = value
    assert verify_checkpoint_doc(doc)
    assert not verify_checkpoint_doc(bad)


@pytest.mark.parametrize("broken", [{}, {"public_key": "!!"}, {"signature": "not base64 at all"}, {"seq": "x"}])
def test_checkpoint_doc_malformed_is_false_not_exception(tmp_path: Path, broken: dict) -> None:
    doc = make_doc(tmp_path / "k")
    if not broken:
        del doc["signature"]
    doc.update(broken)
    assert verify_checkpoint_doc(doc) is False


def test_signing_key_file_never_world_readable_even_with_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_signing_key(tmp_path / "k")
    finally:
        os.umask(old)
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0


def test_cached_event_texts_encode_exactly_like_json_dumps() -> None:
    """audit list joins each event's cached text; the answer must equal plain encoding."""
    import json

    from core.engine.jsontext import EncodedEvent, EventList, answer_text

    evs = EventList(
        EncodedEvent(seq=i, actor="zoë", details={"n": i, "s": "\u2603 \"q\" \\"}, hash="ab" * 32) for i in range(3)
    )
    first = answer_text(evs)
    assert json.loads(first) == json.loads(json.dumps(list(evs)))
    assert first == json.dumps(list(evs), ensure_ascii=False)
    assert answer_text(evs) == first  # from the cache the second time
    assert answer_text(EventList()) == "[]"
    assert answer_text({"when": __import__("datetime").date(2026, 1, 2)}) == '{"when": "2026-01-02"}'


def _joined(rws: list[tuple], tenant: str, chunk: int, start_seq: int = 1) -> list[tuple[int, int, bool, str, str]]:
    """What DuckDBStorage.audit_chain_joined delivers, built from rows in Python."""
    by_seq: dict[int, list[tuple]] = {}
    for r in rws:
        by_seq.setdefault(r[0], []).append(r)
    top = max(by_seq) if by_seq else start_seq - 1
    out = []
    for lo in range(start_seq, top + 1, chunk):
        got = sorted((r for s in range(lo, lo + chunk) for r in by_seq.get(s, [])), key=lambda r: r[0])
        seqs = [r[0] for r in got]
        gapless = len(seqs) == len(set(seqs)) and bool(seqs) and seqs[0] == lo and seqs[-1] == lo + len(seqs) - 1
        pieces = "\x1e".join(r[7] + "\n" + canonical_event(r[0], r[1], tenant, r[2], r[3], r[4], r[5], r[6]) for r in got)
        out.append((lo, len(got), gapless, pieces, "".join(r[8] for r in got)))
    return out


def _verify_joined(rws: list[tuple], tenant: str, chunk: int) -> tuple[bool, int | None, int]:
    from core.audit import verify_joined

    row_of = {r[0]: r for r in rws}
    res = verify_joined(
        tenant, _joined(rws, tenant, chunk), 1, GENESIS_HASH,
        lambda seq: row_of[seq][1:7], lambda lo, hi: sorted(r[0] for r in rws if lo <= r[0] < hi),
    )
    return res.ok, res.first_bad_seq, res.checked


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_joined_verification_agrees_with_the_reference_walk(chunk: int) -> None:
    """Whole-chunk checks must find exactly what the event-by-event reference finds."""
    rnd = random.Random(chunk)
    events = build_chain(150)
    base = rows(events)
    assert _verify_joined(base, "acme", chunk) == (True, None, 150)
    edits = ["detail", "hash", "prev", "upper", "drop", "dup", "swap"]
    for trial in range(60):
        rws = [list(r) for r in base]
        i = rnd.randrange(150)
        kind = edits[trial % len(edits)]
        if kind == "detail":
            rws[i][6] = rws[i][6].replace("viewer", "owner")
        elif kind == "hash":
            rws[i][8] = hashlib.sha256(b"x").hexdigest()
        elif kind == "prev":
            rws[i][7] = hashlib.sha256(b"y").hexdigest()
        elif kind == "upper":  # the same hash in upper case is a change too
            rws[i][8] = rws[i][8].upper()
        elif kind == "drop":
            del rws[i]
        elif kind == "dup":
            rws.insert(i, list(rws[i]))
        else:
            j = min(i + 1, 149)
            rws[i][0], rws[j][0] = rws[j][0], rws[i][0]
        tup = [tuple(r) for r in rws]
        ref = verify_rows("acme", sorted(tup, key=lambda r: r[0]), 1, GENESIS_HASH)
        ok, bad, _checked = _verify_joined(tup, "acme", chunk)
        assert (ok, bad) == (ref.ok, ref.first_bad_seq), (kind, i)


def test_joined_verification_rechecks_a_piece_sql_escaped_differently() -> None:
    """DuckDB's JSON escaping may differ from Python's for some control characters: the
    chunk check fails, and the event-by-event walk accepts the event by its reference form."""
    from core.audit import verify_joined

    events = build_chain(20)
    rws = rows(events)
    chunks = _joined(rws, "acme", 8)
    lo, n, gapless, pieces, hashes = chunks[1]
    parts = pieces.split("\x1e")
    parts[3] = parts[3].replace('"role":"viewer"', '"role":"vi\\u0065wer"')  # same JSON value, other text
    chunks[1] = (lo, n, gapless, "\x1e".join(parts), hashes)
    row_of = {r[0]: r for r in rws}
    res = verify_joined("acme", chunks, 1, GENESIS_HASH, lambda s: row_of[s][1:7], lambda a, b: list(range(a, b)))
    assert res.ok and res.checked == 20


def test_prefetch_keeps_order_passes_errors_and_closes_the_source_on_early_stop() -> None:
    from core.audit import _prefetched

    closed = []

    def source(n: int, fail_at: int | None = None):  # type: ignore[no-untyped-def]
        try:
            for i in range(n):
                if i == fail_at:
                    raise RuntimeError("boom")
                yield i
        finally:
            closed.append(n)

    assert list(_prefetched(source(50))) == list(range(50))
    with pytest.raises(RuntimeError, match="boom"):
        list(_prefetched(source(20, fail_at=5)))
    it = _prefetched(source(1000), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer stops early: the producer stops and closes its source
    assert closed == [50, 20, 1000]
