"""Audit list filters, prune with a signed checkpoint, offline checkpoint documents, and exports.

Exports are read back (parquet through duckdb) and the hash chain is recomputed
from the exported rows alone.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.audit import (
    GENESIS_HASH,
    canonical_details,
    format_ts,
    verify_checkpoint_doc,
    verify_rows,
)
from core.exports import export_audit, export_checkpoint

from .helpers import Home, utc_iso

TRICKY_REASON = 'Prüfung "quoted", comma; new\nline\ttab 🎉 日本 \\ back'


# -- prune and checkpoints -----------------------------------------------------------------


def test_prune_keeps_verification_through_the_signed_checkpoint(eng: Home) -> None:
    t = eng.new_tenant("pr", {"early1": "viewer", "early2": "viewer"})
    c = eng.client(t)
    early = eng.audit(t)
    cut = utc_iso()
    for u in ("late1", "late2", "late3"):
        c.post("/v1/members", {"user": u, "role": "viewer"})
    head_before = eng.head_seq(t)
    res = c.post("/v1/audit/prune", {"before": cut})
    assert res["pruned_through_seq"] == early[-1]["seq"] == len(early)
    assert res["checkpoint_hash"] == early[-1]["hash"]
    assert res["events_removed"] == len(early)
    kept = eng.audit(t)
    assert kept[0]["seq"] == len(early) + 1 and kept[0]["prev_hash"] == early[-1]["hash"]
    assert kept[-1]["action"] == "audit.prune" and kept[-1]["seq"] == head_before + 1
    assert kept[-1]["details"]["last_pruned_hash"] == early[-1]["hash"]
    v = c.post("/v1/audit/verify", {})
    assert v["ok"] is True and v["checkpoints"] == 1 and v["checkpoint_signatures_ok"] is True
    assert v["start_seq"] == len(early) + 1 and v["last_seq"] == eng.head_seq(t)
    assert v["checked"] == eng.head_seq(t) - len(early)
    # Nothing older than the cut is left to prune.
    status, body = eng.raw("POST", "/v1/audit/prune", {"before": cut}, tenant=t)
    assert status == 409 and "no audit events before" in body["error"]["message"]
    # A second prune chains a second checkpoint, and verification still holds.
    cut2 = utc_iso()
    c.post("/v1/members", {"user": "later", "role": "viewer"})
    res2 = c.post("/v1/audit/prune", {"before": cut2})
    assert res2["pruned_through_seq"] > res["pruned_through_seq"]
    v2 = c.post("/v1/audit/verify", {})
    assert v2["ok"] is True and v2["checkpoints"] == 2 and v2["start_seq"] == res2["pruned_through_seq"] + 1


@pytest.mark.parametrize("before,msg", [("2999-01-01", "in the future"), ("not-a-date", "is not a date"), ("", "required")])
def test_prune_bad_before(eng: Home, before: str, msg: str) -> None:
    t = eng.new_tenant("prb")
    head = eng.head_seq(t)
    status, body = eng.raw("POST", "/v1/audit/prune", {"before": before}, tenant=t)
    assert status == 400 and msg in body["error"]["message"]
    assert eng.head_seq(t) == head


def test_checkpoint_document_verifies_offline(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("cp", {"x": "viewer"})
    out = tmp_path / "cp.json"
    doc = export_checkpoint(eng.client(t), str(out))
    assert json.loads(out.read_text()) == doc
    assert doc["algorithm"] == "Ed25519" and doc["tenant_id"] == t
    assert verify_checkpoint_doc(doc)
    # It signs the head at the time it was made.
    head = [e for e in eng.audit(t) if e["seq"] == doc["seq"]]
    assert head and head[0]["hash"] == doc["hash"]
    last = eng.audit(t)[-1]
    assert last["action"] == "audit.checkpoint" and last["details"]["path"] == str(out)
    for field, value in [("seq", doc["seq"] - 1), ("hash", "0" * 64), ("tenant_id", "other"), ("created_at", "2000-01-01T00:00:00.000000Z")]:
        bad = copy.deepcopy(doc)
        bad[field] = value
        assert not verify_checkpoint_doc(bad), field
    # The same key signs every checkpoint of this engine; it is the key in $MUSUBI_HOME.
    again = eng.client(t).post("/v1/audit/checkpoint", {})
    assert again["public_key"] == doc["public_key"] and verify_checkpoint_doc(again)
    assert eng.paths.signing_key.exists() and eng.paths.signing_key.stat().st_mode & 0o077 == 0


def test_checkpoint_bad_destination_label(eng: Home) -> None:
    t = eng.new_tenant("cpb")
    head = eng.head_seq(t)
    status, body = eng.raw("POST", "/v1/audit/checkpoint", {"destination": 7}, tenant=t)
    assert status == 400 and "destination must be" in body["error"]["message"]
    assert eng.head_seq(t) == head


# -- list filters --------------------------------------------------------------------------


def test_audit_list_filters(eng: Home) -> None:
    t = eng.new_tenant("al", {"fa": "viewer"})
    eng.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}, tenant=t, as_user="fa")
    c = eng.client(t)
    assert {e["outcome"] for e in eng.audit(t, outcome="denied")} == {"denied"}
    assert [e["actor"] for e in eng.audit(t, outcome="denied")] == ["fa"]
    assert {e["action"] for e in eng.audit(t, action="quota.*")} == {"quota.set"}
    newest = c.get("/v1/audit", {"limit": 2})
    assert len(newest) == 2 and newest[0]["seq"] > newest[1]["seq"]
    assert eng.audit(t, since="2999-01-01") == []
    impersonated = eng.audit(t, actor=c.get("/v1/whoami")["user"])
    assert any(e["actor"] == "fa" for e in impersonated)  # found through details.impersonator


# -- export --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(eng: Home, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Path], list[dict[str, Any]]]:
    t = eng.new_tenant("ex", {"zoe": "member"})
    c = eng.client(t)
    eng.client().post(f"/v1/tenants/{t}/suspend", {"reason": TRICKY_REASON})
    eng.client().post(f"/v1/tenants/{t}/resume", {})
    eng.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day"}, tenant=t, as_user="zoe")
    c.post("/v1/usage", {"model": "m-ü", "input_tokens": 3, "cost_usd": "0.000123"})
    d = tmp_path_factory.mktemp("export")
    files = {}
    for fmt in ("jsonl", "csv", "parquet"):
        p = d / f"audit.{fmt}"
        r = export_audit(c, fmt, {}, str(p))
        assert r["events"] > 0 and Path(r["path"]) == p
        files[fmt] = p
    return t, files, eng.audit(t)


def _read(fmt: str, path: Path) -> list[tuple[Any, ...]]:
    """Rows (seq, ts, actor, action, resource, outcome, details, prev_hash, hash) from an export."""
    out = []
    if fmt == "jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            d = r["details"] if isinstance(r["details"], str) else canonical_details(r["details"])
            out.append((r["seq"], r["ts"], r["actor"], r["action"], r["resource"], r["outcome"], d, r["prev_hash"], r["hash"]))
    elif fmt == "csv":
        with path.open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                out.append((int(r["seq"]), r["ts"], r["actor"], r["action"], r["resource"], r["outcome"], r["details"], r["prev_hash"], r["hash"]))
    else:
        con = duckdb.connect()
        try:
            rows = con.execute(
                "SELECT seq, ts, actor, action, resource, outcome, details, prev_hash, hash FROM read_parquet(?) ORDER BY seq",
                [str(path)],
            ).fetchall()
        finally:
            con.close()
        for seq, ts, *rest in rows:
            out.append((int(seq), format_ts(ts), *rest))
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_reads_back_and_the_chain_recomputes(exported: tuple[str, dict[str, Path], list[dict[str, Any]]], fmt: str) -> None:
    t, files, listed = exported
    rows = _read(fmt, files[fmt])
    assert rows[0][0] == 1 and rows[0][7] == GENESIS_HASH
    res = verify_rows(t, rows)
    assert res.ok, res.as_json()
    assert res.checked == len(rows) and res.last_hash == rows[-1][8]
    # Same events as the engine lists (the export itself is audited after it was written).
    by_seq = {e["seq"]: e for e in listed}
    for r in rows:
        assert by_seq[r[0]]["hash"] == r[8]
    assert any(TRICKY_REASON in r[6] or json.loads(r[6]).get("reason") == TRICKY_REASON for r in rows)
    # One edited field in the exported copy is found.
    bad = list(rows)
    i = len(bad) // 2
    bad[i] = (*bad[i][:2], "mallory", *bad[i][3:])
    assert verify_rows(t, bad).first_bad_seq == bad[i][0]


@pytest.mark.parametrize(
    "body,msg",
    [
        ({"format": "xml", "path": "/tmp/x.xml"}, "unknown export format"),
        ({"format": "csv", "destination": ["x"]}, "destination must be"),
        ({"format": "csv", "dry_run": "yes"}, "dry_run must be"),
        ({"format": "csv", "path": "/tmp/x.csv", "filters": "all"}, "filters must be"),
        ({"format": "csv", "path": "/tmp/x.csv", "filters": {"outcome": "maybe"}}, "outcome"),
    ],
)
def test_export_bad_input(eng: Home, body: dict[str, Any], msg: str) -> None:
    t = eng.new_tenant("exb")
    head = eng.head_seq(t)
    status, resp = eng.raw("POST", "/v1/audit/export", body, tenant=t)
    assert status == 400 and msg in resp["error"]["message"]
    assert eng.head_seq(t) == head


def test_export_filtered_by_outcome(eng: Home, exported: tuple[str, dict[str, Path], list[dict[str, Any]]], tmp_path: Path) -> None:
    t, _files, _listed = exported
    p = tmp_path / "denied.jsonl"
    r = export_audit(eng.client(t), "jsonl", {"outcome": "denied"}, str(p))
    lines = [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]
    assert r["events"] == len(lines) == 1 and lines[0]["actor"] == "zoe"
