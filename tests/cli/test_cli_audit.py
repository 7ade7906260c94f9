"""``musubi audit``: list, verify (exit 5 when tampered), export, prune, signed checkpoints."""

from __future__ import annotations

import base64
import csv
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from .helpers import Cli, run_musubi

EVENT_KEYS = {"tenant_id", "seq", "ts", "actor", "action", "resource", "outcome", "details", "prev_hash", "hash"}


def test_list_and_filters(cli: Cli) -> None:
    t = ("--tenant", "a-list")
    cli.ok("tenant", "create", "a-list")
    cli.ok(*t, "member", "add", "bob", "--role", "viewer")
    cli.fails(4, *t, "--as", "bob", "member", "add", "eve", "--role", "viewer")
    rows = cli.js(*t, "audit", "list")
    assert rows and set(rows[0]) == EVENT_KEYS
    seqs = [e["seq"] for e in rows]
    assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1  # newest first, gapless from 1
    oldest = cli.js(*t, "audit", "list", "--oldest-first", "--limit", "2")
    assert [e["seq"] for e in oldest] == [1, 2] and oldest[0]["action"] == "tenant.create"
    assert {e["action"] for e in cli.js(*t, "audit", "list", "--action", "member.add")} == {"member.add"}
    assert {e["actor"] for e in cli.js(*t, "audit", "list", "--actor", "bob")} == {"bob"}
    assert len(cli.js(*t, "audit", "list", "--limit", "1")) == 1
    assert cli.js(*t, "audit", "list", "--since", "2999-01-01") == []
    assert cli.js(*t, "audit", "list", "--until", "2000-01-01") == []
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert cli.js(*t, "audit", "list", "--since", today)
    denied = cli.js(*t, "audit", "list", "--outcome", "denied")
    assert len(denied) == 1 and denied[0]["actor"] == "bob"
    assert "no audit events match" in cli.ok(*t, "audit", "list", "--actor", "nobody").out
    r = cli.fails(2, *t, "audit", "list", "--since", "yesterday")
    assert "not a date" in r.err
    cli.fails(2, *t, "audit", "list", "--since", "2026-02-01", "--until", "2026-01-01")
    # a viewer lacks audit.read
    cli.fails(4, *t, "--as", "bob", "audit", "list")


def test_verify_ok(cli: Cli) -> None:
    cli.ok("tenant", "create", "a-ver")
    v = cli.js("--tenant", "a-ver", "audit", "verify")
    assert v["ok"] is True and v["first_bad_seq"] is None and v["checked"] == v["last_seq"] >= 1
    assert {"tenant_id", "ok", "checked", "first_bad_seq", "reason", "start_seq", "last_seq", "last_hash",
            "checkpoints", "checkpoint_signatures_ok"} <= set(v)
    assert "verifies" in cli.ok("audit", "verify", "--tenant", "a-ver").out


def test_export_formats(cli: Cli) -> None:
    t = ("--tenant", "a-exp")
    cli.ok("tenant", "create", "a-exp")
    cli.ok(*t, "member", "add", "bob", "--role", "viewer")
    total = len(cli.js(*t, "audit", "list"))
    with tempfile.TemporaryDirectory(prefix="mhx") as d:
        # -o is relative to the client's directory, resolved before the engine sees it
        out = cli.js(*t, "audit", "export", "--format", "jsonl", "-o", "a.jsonl", cwd=d)
        size = Path(d, "a.jsonl").stat().st_size
        assert out == {"format": "jsonl", "path": os.path.join(os.path.realpath(d), "a.jsonl"), "events": total, "bytes": size}
        lines = Path(d, "a.jsonl").read_text().splitlines()
        assert len(lines) == total and set(json.loads(lines[0])) >= {"seq", "hash", "prev_hash", "action"}

        adds = cli.js(*t, "audit", "list", "--action", "member.add")  # the owner's binding and bob's
        out = cli.js(*t, "audit", "export", "--format", "csv", "-o", os.path.join(d, "m.csv"), "--action", "member.add")
        assert out["events"] == len(adds) == 2
        with open(os.path.join(d, "m.csv"), newline="") as f:
            assert sorted(r["resource"] for r in csv.DictReader(f)) == sorted(e["resource"] for e in adds)

        now = len(cli.js(*t, "audit", "list"))  # each export is itself audited
        assert now == total + 2
        msg = cli.ok(*t, "audit", "export", "--format", "parquet", "--output", os.path.join(d, "a.parquet")).out
        assert f"exported {now} events" in msg and "parquet" in msg
        assert duckdb.sql(f"SELECT count(*) FROM '{os.path.join(d, 'a.parquet')}'").fetchone() == (now,)

        r = cli.fails(2, *t, "audit", "export", "--format", "jsonl", "-o", os.path.join(d, "missing", "x.jsonl"))
        assert "does not exist" in r.err
    cli.fails(4, *t, "--as", "bob", "audit", "export", "--format", "jsonl", "-o", "/tmp/never.jsonl")
    assert not os.path.exists("/tmp/never.jsonl")


def test_checkpoint_export_and_offline_verify(cli: Cli) -> None:
    t = ("--tenant", "a-cp")
    cli.ok("tenant", "create", "a-cp")
    doc = cli.js(*t, "audit", "checkpoint")
    assert doc["kind"] == "musubi.audit.checkpoint" and doc["algorithm"] == "Ed25519" and doc["tenant_id"] == "a-cp"
    assert "--export" in cli.ok(*t, "audit", "checkpoint").out
    with tempfile.TemporaryDirectory(prefix="mhc") as d:
        cli.ok(*t, "audit", "checkpoint", "--export", "cp.json", cwd=d)
        path = os.path.join(d, "cp.json")
        saved = json.loads(Path(path).read_text())
        assert saved["seq"] >= doc["seq"] and saved["public_key"] == doc["public_key"]

        # offline: no engine at all behind this home
        nohome = "/tmp/mh-no-engine-here"
        ok = run_musubi("audit", "checkpoint", "--verify", path, "--json", home=nohome)
        assert ok.rc == 0, str(ok)
        res = ok.json()
        assert res["valid"] is True and res["reason"] is None and res["seq"] == saved["seq"] and res["key_pinned"] is False
        assert not os.path.exists(nohome)
        pinned = run_musubi("audit", "checkpoint", "--verify", path, "--public-key", doc["public_key"], home=nohome)
        assert pinned.rc == 0 and "valid with the pinned key" in pinned.out

        other_key = base64.b64encode(b"\x01" * 32).decode()
        wrong = run_musubi("audit", "checkpoint", "--verify", path, "--public-key", other_key, "--json", home=nohome)
        assert wrong.rc == 5 and "different key" in wrong.json()["reason"]
        bad = run_musubi("audit", "checkpoint", "--verify", path, "--public-key", "not base64!", home=nohome)
        assert bad.rc == 2 and "--public-key" in bad.err

        saved["seq"] = saved["seq"] + 1
        Path(path).write_text(json.dumps(saved))
        r = run_musubi("audit", "checkpoint", "--verify", path, home=nohome)
        assert r.rc == 5 and "INVALID" in r.out and "signature" in r.out
        Path(path).write_text("{ not json")
        r = run_musubi("audit", "checkpoint", "--verify", path, "--json", home=nohome)
        assert r.rc == 5 and r.json()["valid"] is False and set(r.json()) == set(res)
        r = run_musubi("audit", "checkpoint", "--verify", os.path.join(d, "absent.json"), home=nohome)
        assert r.rc == 2
        r = run_musubi("audit", "checkpoint", "--verify", path, "--export", path, home=nohome)
        assert r.rc == 2 and "not both" in r.err


def test_prune_keeps_the_chain_verifiable(fresh_home: Cli) -> None:
    cli = fresh_home
    cli.ok("tenant", "create", "a-prune")
    t = ("--tenant", "a-prune")
    cli.ok(*t, "member", "add", "bob", "--role", "viewer")
    cut = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    cli.ok(*t, "member", "add", "carol", "--role", "viewer")
    head = cli.js(*t, "audit", "list", "--limit", "1")[0]["seq"]

    r = cli.fails(2, *t, "audit", "prune", "--before", cut)
    assert "--yes" in r.err
    r = cli.fails(2, *t, "audit", "prune", "--before", "2999-01-01", "--yes")
    assert "future" in r.err
    cli.fails(2, *t, "audit", "prune", "--before", "soon", "--yes")
    cli.fails(1, *t, "audit", "prune", "--before", "2000-01-01", "--yes")  # nothing that old

    pruned = cli.js(*t, "audit", "prune", "--before", cut, "--yes")
    assert set(pruned) == {"tenant", "pruned_through_seq", "checkpoint_hash", "events_removed", "before"}
    assert 1 <= pruned["pruned_through_seq"] < head and pruned["events_removed"] == pruned["pruned_through_seq"]
    remaining = cli.js(*t, "audit", "list", "--oldest-first")
    assert remaining[0]["seq"] == pruned["pruned_through_seq"] + 1
    v = cli.js(*t, "audit", "verify")
    assert v["ok"] is True and v["checkpoints"] == 1 and v["start_seq"] == pruned["pruned_through_seq"] + 1


def test_tampering_is_found_and_named(fresh_home: Cli) -> None:
    cli = fresh_home
    cli.ok("tenant", "create", "a-tamper")
    t = ("--tenant", "a-tamper")
    for user in ("bob", "carol", "dave"):
        cli.ok(*t, "member", "add", user, "--role", "viewer")
    events = cli.js(*t, "audit", "list", "--oldest-first")
    victim = next(e for e in events if e["resource"] == "member:carol")
    assert cli.js(*t, "audit", "verify")["ok"] is True

    cli.ok("engine", "stop")
    con = duckdb.connect(str(cli.paths.db))
    try:
        con.execute("UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = ? AND seq = ?", ["a-tamper", victim["seq"]])
    finally:
        con.close()

    r = cli(*t, "audit", "verify")
    assert r.rc == 5, str(r)
    assert f"BROKEN at seq {victim['seq']}" in r.out
    v = cli(*t, "audit", "verify", "--json")
    assert v.rc == 5
    body = v.json()
    assert body["ok"] is False and body["first_bad_seq"] == victim["seq"] and body["checked"] == victim["seq"] - 1
    assert "hash" in body["reason"]
    # other tenants' chains are untouched
    assert cli.js("audit", "verify")["ok"] is True
