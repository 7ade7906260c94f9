"""A journaled group the database refuses is quarantined: kept on disk, reported, audited; the rest goes on.

Issue 9, item 1: one acknowledged write that DuckDB could not hold (an out-of-range
cost, a duplicate key) made the apply retry forever, lost later writes on a graceful
stop and made every start fail.  The poison here does not depend on input checks at
the HTTP boundary (which refuse the original reproduction now): a unique index added
to the database behind the engine's back makes a perfectly valid second
``usage record`` of the same model unappliable, and a crafted journal line stands
for whatever else could slip through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from core.engine.journal import APPLIED_KEY, encode
from core.engine.quarantine import read_group
from core.errors import StorageError
from core.storage.base import Insert

from .helpers import Home, poll, wait_gone

REPO = Path(__file__).resolve().parents[2]


def _poison(home: Home) -> None:
    """With the engine stopped: make a second ledger row for the same model violate a constraint."""
    con = duckdb.connect(str(home.paths.db))
    try:
        con.execute("CREATE UNIQUE INDEX poison ON usage_ledger(model)")
    finally:
        con.close()


def _refused_write(home: Home, prefix: str) -> tuple[str, Any]:
    """A tenant of a poisoned home, with one accepted and one acknowledged-but-refused record."""
    home.start()
    t = home.new_tenant(prefix)
    c = home.client(t)
    home.stop()
    _poison(home)
    home.start()
    _record(c, "dup")
    _record(c, "dup")
    return t, c


def _post(c: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST, retrying the one refusal a client may meet while the engine reloads after a quarantine.

    That refusal (``write_failed``, "retry it") changed nothing, so retrying is what a
    client should do; any other error fails the test.
    """
    for _ in range(5):
        try:
            return dict(c.post(path, body))
        except StorageError as exc:
            if exc.code != "write_failed" or "retry it" not in exc.message:
                raise
    raise AssertionError(f"{path} refused five times")


def _record(c: Any, model: str) -> dict[str, Any]:
    return _post(c, "/v1/usage", {"model": model, "input_tokens": 1, "output_tokens": 2})


def _musubi(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, human output."""
    return subprocess.run(
        [sys.executable, "-m", "tui", "--home", str(home.dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _health(home: Home) -> dict[str, Any]:
    return dict(home.client().get("/v1/health"))


def test_a_refused_group_is_quarantined_and_later_writes_survive(home: Home) -> None:
    home.start()
    t = home.new_tenant("qa")
    c = home.client(t)
    _record(c, "before")
    home.stop()
    _poison(home)
    home.start()
    _record(c, "dup")
    bad = _record(c, "dup")  # acknowledged (journaled), but the database refuses it
    after = [_record(c, f"after-{i}") for i in range(20)]
    _post(c, "/v1/members", {"user": "late", "role": "viewer"})

    h = poll(lambda: (x := _health(home))["quarantined_groups"] == 1 and x, timeout=30)
    # Audited once state was reloaded without it.
    ev = poll(lambda: home.audit(t, action="engine.quarantine"))
    assert h["quarantine_dir"] == str(home.paths.quarantine)
    files = sorted(home.paths.quarantine.glob("*.json"))
    assert len(files) == 1
    _no, muts = read_group(files[0])
    assert [
        m.row["entry_id"] for m in muts if isinstance(m, Insert) and m.table == "usage_ledger"
    ] == [bad["entry_id"]]

    # Memory was rebuilt from the database: the refused record is not counted.
    assert home.quota(t, "tokens", "day")["used"] == 3 * (2 + len(after))

    # Audited in the tenant and in the system tenant, naming the file.
    assert (
        ev[0]["actor"] == "engine"
        and ev[0]["details"]["file"] == files[0].relative_to(home.dir).as_posix()
    )
    assert "usage_ledger" in ev[0]["details"]["error"] or "Duplicate" in ev[0]["details"]["error"]
    assert home.audit("default", action="engine.quarantine")

    # Verify tells the truth: the gap is named, its events checked from the file.
    v = c.post("/v1/audit/verify", {})
    assert v["ok"] is True, v
    (gap,) = v["quarantined"]
    human = _musubi(home, "--tenant", t, "audit", "verify")
    assert (
        human.returncode == 0
        and f"note: events {gap['first_seq']}..{gap['last_seq']} are not in the database"
        in human.stdout
    )
    refused = [
        e
        for e in home.audit(t, action="usage.record")
        if e["details"]["entry_id"] == bad["entry_id"]
    ]
    assert refused == []  # its event is not in the table ...
    assert gap["first_seq"] == gap["last_seq"] and gap["file"] == ev[0]["details"]["file"]
    assert v["checked"] == v["last_seq"] - v["start_seq"] + 1  # ... yet every seq was checked

    # A graceful stop does not hang on it, and the next start is normal.
    home.stop()
    info = home.start()
    assert info["started"] is True and info["quarantined_groups"] == 1
    entries = {e["details"]["entry_id"] for e in home.audit(t, action="usage.record")}
    assert {a["entry_id"] for a in after} <= entries
    assert "late" in {m["user"] for m in c.get("/v1/members")}
    assert c.post("/v1/audit/verify", {})["ok"] is True
    assert _record(c, "fresh")["entry_id"] > max(
        a["entry_id"] for a in after
    )  # ids are not handed out twice


def test_kill9_after_acknowledging_a_refused_group_starts_and_keeps_good_writes(home: Home) -> None:
    t, c = _refused_write(home, "qk")
    good = [_record(c, f"good-{i}")["entry_id"] for i in range(10)]
    pid = home.kill9()
    wait_gone(pid)

    info = home.start()  # the replay quarantines instead of failing the start
    assert info["started"] is True and info["quarantined_groups"] == 1
    entries = {e["details"]["entry_id"] for e in home.audit(t, action="usage.record")}
    assert set(good) <= entries
    assert home.quota(t, "tokens", "day")["used"] == 3 * (1 + len(good))
    v = c.post("/v1/audit/verify", {})
    assert v["ok"] is True and len(v["quarantined"]) == 1, json.dumps(v)
    assert poll(lambda: home.audit(t, action="engine.quarantine"))


def test_a_crafted_unappliable_journal_line_is_quarantined_at_start(home: Home) -> None:
    home.start()
    t = home.new_tenant("qj")
    home.stop()
    con = duckdb.connect(str(home.paths.db))
    try:
        row = con.execute("SELECT value FROM engine_meta WHERE key = ?", [APPLIED_KEY]).fetchone()
        tenant_row = con.execute("SELECT * FROM tenants WHERE tenant_id = ?", [t]).fetchone()
        cols = [d[0] for d in con.description]
    finally:
        con.close()
    assert row and tenant_row
    applied = int(row[0])
    dup = Insert("tenants", dict(zip(cols, tenant_row, strict=True)))  # a duplicate primary key
    late = Insert(
        "members",
        {
            "tenant_id": t,
            "user_name": "late",
            "project": "",
            "role": "viewer",
            "created_at": tenant_row[cols.index("created_at")],
            "created_by": "root",
        },
    )
    with open(home.paths.journal, "ab") as f:
        f.write(encode(applied + 1, [dup]) + encode(applied + 2, [late]))

    info = home.start()
    assert info["started"] is True and info["quarantined_groups"] == 1
    assert "late" in {m["user"] for m in home.client(t).get("/v1/members")}
    doc = json.loads((home.paths.quarantine / f"{applied + 1}.json").read_text())
    assert (
        doc["group"] == applied + 1
        and "duplicate key" in doc["error"].lower()
        and doc["tenants"] == [t]
    )
    ev = poll(lambda: home.audit(t, action="engine.quarantine"))
    assert ev[0]["details"]["group"] == applied + 1 and ev[0]["details"]["events"] == []
    assert home.client(t).post("/v1/audit/verify", {})["ok"] is True
    status = _musubi(home, "engine", "status")
    assert status.returncode == 0 and "warning: 1 journaled write group" in status.stdout, (
        status.stdout
    )
    assert str(home.paths.quarantine) in status.stdout


def test_verify_reports_a_missing_quarantine_file_at_the_gap(home: Home) -> None:
    t, c = _refused_write(home, "qv")
    _record(c, "after")
    poll(lambda: _health(home)["quarantined_groups"] == 1, timeout=30)
    gap = c.post("/v1/audit/verify", {})["quarantined"][0]
    (home.dir / gap["file"]).unlink()
    v = home.raw("POST", "/v1/audit/verify", {}, tenant=t)[1]
    assert v["ok"] is False and v["first_bad_seq"] == gap["first_seq"], v
    assert gap["file"] in v["reason"] and "cannot be read" in v["reason"]
