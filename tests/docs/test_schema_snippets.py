"""The verification scripts and SQL in docs/schema.md, run against a real engine's database.

One engine writes a varied history (non-ASCII details, impersonation, denials, a quota alert with a
float threshold, an exported checkpoint, a prune, writes after the prune) and is stopped; then the
documented scripts, extracted verbatim from the page, must accept that file and reject tampered
copies at the right seq, agreeing with the engine's own ``audit verify``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from core.exports import export_checkpoint
from core.paths import HomePaths

from .engine_home import client, new_home, remove_home, running_engine

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def snippet(marker: str) -> str:
    """The python block between ``<!-- marker:start -->`` and ``<!-- marker:end -->``."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(
        rf"<!-- {marker}:start -->\s*```python\n(.*?)```\s*<!-- {marker}:end -->", text, re.S
    )
    assert m, f"docs/schema.md lost the {marker} snippet or its markers"
    return m.group(1)


@dataclass
class History:
    paths: HomePaths
    tenant: str
    head_seq: int  # the tenant's head as the engine reported it before stopping
    pruned_through: int
    checkpoint_file: Path
    public_key: str
    scripts: Path


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    scripts = tmp_path_factory.mktemp("scripts")
    (scripts / "verify_chain.py").write_text(snippet("verify-chain"), encoding="utf-8")
    (scripts / "verify_checkpoint.py").write_text(snippet("verify-checkpoint"), encoding="utf-8")
    paths = new_home()
    tenant = "docs-acme"
    with running_engine(paths):
        root = client(paths)
        root.post("/v1/tenants", {"name": tenant})
        t = client(paths, tenant)
        t.post("/v1/members", {"user": "alice", "role": "member"})
        t.put(
            "/v1/quotas",
            {"metric": "tokens", "limit": 1000, "period": "day", "alerts": [0.25, 0.9]},
        )
        t.post(
            "/v1/usage",
            {"model": "gpt-4o", "input_tokens": 100, "output_tokens": 50, "cost_usd": "0.0125"},
        )
        time.sleep(0.002)
        before = _utc_now()
        time.sleep(0.002)
        alice = client(paths, tenant, as_user="alice")
        alice.post(
            "/v1/usage", {"model": "modèle-ü", "input_tokens": 200, "output_tokens": 0}
        )  # crosses 0.25
        with pytest.raises(Exception, match="quotas.manage"):
            alice.put(
                "/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}
            )  # an audited denial
        rid = t.post("/v1/reservations", {"tokens": 25})["reservation_id"]
        t.post(
            f"/v1/reservations/{rid}/settle", {"input_tokens": 40, "output_tokens": 10}
        )  # 25 over: twice the reservation, the most a settle may charge
        pruned = t.post("/v1/audit/prune", {"before": before})
        root.post(f"/v1/tenants/{tenant}/suspend", {"reason": "facture impayée ☕"})
        root.post(f"/v1/tenants/{tenant}/resume", {})
        cp_file = paths.exports / "checkpoint.json"
        doc = export_checkpoint(t, str(cp_file))  # signs the head, then audits that
        head = int(root.get(f"/v1/tenants/{tenant}")["audit_head_seq"])
        assert t.post("/v1/audit/verify", {})["ok"] is True
    try:
        yield History(
            paths,
            tenant,
            head,
            int(pruned["pruned_through_seq"]),
            cp_file,
            doc["public_key"],
            scripts,
        )
    finally:
        remove_home(paths)


def run_script(h: History, name: str, *args: str | Path) -> tuple[int, str]:
    p = subprocess.run(
        [sys.executable, str(h.scripts / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not p.stderr.strip(), p.stderr  # the scripts report on stdout; a traceback is a doc bug
    return p.returncode, p.stdout.strip()


def tampered_copy(h: History, tmp_path: Path, *sql: str) -> Path:
    db = tmp_path / "copy.duckdb"
    shutil.copy(h.paths.db, db)
    con = duckdb.connect(str(db))
    for stmt in sql:
        con.execute(stmt)
    con.close()
    return db


# -- the chain script -------------------------------------------------------------------------


def test_chain_script_accepts_a_real_pruned_chain(history: History) -> None:
    h = history
    assert h.pruned_through >= 5  # the prune really happened, so the script starts at a checkpoint
    rc, out = run_script(h, "verify_chain.py", h.paths.db, h.tenant)
    assert rc == 0, out
    checked = h.head_seq - h.pruned_through
    assert out.startswith(f"OK: {checked} events checked, head seq {h.head_seq}, hash "), out


def test_chain_script_accepts_an_unpruned_chain_from_genesis(history: History) -> None:
    rc, out = run_script(history, "verify_chain.py", history.paths.db, "default")
    assert rc == 0 and out.startswith("OK: "), out


def test_chain_script_names_a_changed_row(history: History, tmp_path: Path) -> None:
    h = history
    seq = h.pruned_through + 2
    db = tampered_copy(
        h,
        tmp_path,
        f"UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = '{h.tenant}' AND seq = {seq}",
    )
    rc, out = run_script(h, "verify_chain.py", db, h.tenant)
    assert rc == 1
    assert out == f"BROKEN at seq {seq}: hash does not match the event's contents"


def test_chain_script_names_a_changed_detail(history: History, tmp_path: Path) -> None:
    h = history
    con = duckdb.connect(str(h.paths.db), read_only=True)
    row = con.execute(
        "SELECT min(seq) FROM audit_log WHERE tenant_id = ? AND action = 'usage.record'", [h.tenant]
    ).fetchone()
    con.close()
    assert row and row[0] is not None
    seq = row[0]
    db = tampered_copy(
        h,
        tmp_path,
        f"UPDATE audit_log SET details = json_merge_patch(details, '{{\"tokens\": 1}}')"
        f" WHERE tenant_id = '{h.tenant}' AND seq = {seq}",
    )
    rc, out = run_script(h, "verify_chain.py", db, h.tenant)
    assert (rc, out) == (1, f"BROKEN at seq {seq}: hash does not match the event's contents")


def test_chain_script_names_a_deleted_row(history: History, tmp_path: Path) -> None:
    h = history
    seq = h.pruned_through + 3
    db = tampered_copy(
        h, tmp_path, f"DELETE FROM audit_log WHERE tenant_id = '{h.tenant}' AND seq = {seq}"
    )
    rc, out = run_script(h, "verify_chain.py", db, h.tenant)
    assert rc == 1 and out.startswith(f"BROKEN at seq {seq}: expected seq {seq}"), out


def test_chain_script_notices_a_forged_checkpoint(history: History, tmp_path: Path) -> None:
    h = history
    db = tampered_copy(
        h,
        tmp_path,
        f"UPDATE audit_checkpoints SET hash = repeat('a', 64) WHERE tenant_id = '{h.tenant}'",
    )
    rc, out = run_script(h, "verify_chain.py", db, h.tenant)
    first_kept = h.pruned_through + 1
    assert (rc, out) == (
        1,
        f"BROKEN at seq {first_kept}: prev_hash is not the previous event's hash",
    )
    rc, out = run_script(h, "verify_checkpoint.py", db, h.tenant)
    assert rc == 1 and "BAD" in out, out


def test_script_and_engine_agree_on_a_tampered_file(history: History, tmp_path: Path) -> None:
    """The doc's hash definition is the engine's: both name the same seq on the same file."""
    h = history
    seq = h.head_seq - 1
    sql = f"UPDATE audit_log SET resource = 'tenant:other' WHERE tenant_id = '{h.tenant}' AND seq = {seq}"
    rc, out, res = _script_and_engine(h, tmp_path, sql)
    assert (rc, out) == (1, f"BROKEN at seq {seq}: hash does not match the event's contents")
    assert res["ok"] is False and res["first_bad_seq"] == seq, res


def _script_and_engine(h: History, tmp_path: Path, sql: str) -> tuple[int, str, dict[str, object]]:
    """Tamper a copy with ``sql``; the script's verdict on it and the engine's ``audit verify``."""
    home = new_home()
    try:
        shutil.copy(h.paths.signing_key, home.signing_key)
        shutil.copy(tampered_copy(h, tmp_path, sql), home.db)
        rc, out = run_script(h, "verify_chain.py", home.db, h.tenant)
        with running_engine(home):
            res = client(home, h.tenant).post("/v1/audit/verify", {})
        return rc, out, dict(res)
    finally:
        remove_home(home)


def test_script_and_engine_agree_on_non_canonical_details_text(history: History, tmp_path: Path) -> None:
    """Same value, other text (a space after the colon): both report a change at that seq."""
    h = history
    con = duckdb.connect(str(h.paths.db), read_only=True)
    row = con.execute(
        "SELECT seq, CAST(details AS VARCHAR) FROM audit_log WHERE tenant_id = ? AND action = 'tenant.suspend'",
        [h.tenant],
    ).fetchone()
    con.close()
    assert row is not None
    seq, details = row
    spaced = json.dumps(json.loads(details), ensure_ascii=False)  # {"reason": "..."}: a space after the colon
    assert spaced != details and json.loads(spaced) == json.loads(details)
    sql = (
        "UPDATE audit_log SET details = '"
        + spaced.replace("'", "''")
        + f"' WHERE tenant_id = '{h.tenant}' AND seq = {seq}"
    )
    rc, out, res = _script_and_engine(h, tmp_path, sql)
    assert (rc, out) == (1, f"BROKEN at seq {seq}: details is not stored as its canonical JSON text")
    assert res["ok"] is False and res["first_bad_seq"] == seq, res
    assert res["reason"] == "details is not stored as its canonical JSON text", res


# -- the checkpoint script --------------------------------------------------------------------


def test_checkpoint_script_accepts_export_and_db_rows(history: History) -> None:
    h = history
    rc, out = run_script(h, "verify_checkpoint.py", h.checkpoint_file)
    assert rc == 0 and out.endswith(": ok"), out
    rc, out = run_script(h, "verify_checkpoint.py", h.checkpoint_file, h.public_key)
    assert rc == 0, out
    rc, out = run_script(h, "verify_checkpoint.py", h.paths.db, h.tenant)
    assert rc == 0 and f"seq {h.pruned_through} " in out and out.endswith(": ok"), out
    rc, out = run_script(h, "verify_checkpoint.py", h.paths.db, h.tenant, h.public_key)
    assert rc == 0, out


def test_checkpoint_script_rejects_wrong_key_and_edited_file(
    history: History, tmp_path: Path
) -> None:
    h = history
    other_key = "A" * 43 + "="
    rc, out = run_script(h, "verify_checkpoint.py", h.checkpoint_file, other_key)
    assert rc == 1 and "BAD" in out, out
    doc = json.loads(h.checkpoint_file.read_text(encoding="utf-8"))
    doc["seq"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    rc, out = run_script(h, "verify_checkpoint.py", edited)
    assert rc == 1 and "BAD" in out, out


# -- the example SQL --------------------------------------------------------------------------


def test_example_queries_run(history: History) -> None:
    h = history
    text = DOC.read_text(encoding="utf-8").split("## Example auditor queries", 1)[1]
    queries = re.findall(r"```sql\n(.*?)```", text, re.S)
    assert len(queries) >= 6
    con = duckdb.connect(str(h.paths.db), read_only=True)
    try:
        results = [con.execute(q.replace("'acme'", f"'{h.tenant}'")).fetchall() for q in queries]
    finally:
        con.close()
    denials, impersonated = results[0], results[1]
    assert any(r[3] == "quota.set" and r[5] == "quotas.manage" for r in denials), denials
    me = pwd.getpwuid(os.getuid()).pw_name
    assert any(r[3] == me and r[4] == "alice" and r[5] == "quota.set" for r in impersonated), (
        impersonated
    )
    spend = {(r[0], r[1]): r for r in results[2]}
    assert spend[(me, "gpt-4o")][4] == 0.0125 and spend[("alice", "modèle-ü")][2] == 200, spend


def _head_check(h: History, db: Path) -> list[tuple[object, ...]]:
    """Run the page's tail-truncation query, filled with the exported checkpoint."""
    doc = json.loads(h.checkpoint_file.read_text(encoding="utf-8"))
    text = DOC.read_text(encoding="utf-8").split("## Re-verifying a chain yourself", 1)[1]
    q = re.search(r"```sql\n(.*?)```", text, re.S)
    assert q, "the head-check query is missing"
    sql = (
        q.group(1)
        .replace("<hash from the exported file>", doc["hash"])
        .replace("<seq from the exported file>", str(doc["seq"]))
        .replace("'acme'", f"'{h.tenant}'")
    )
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_head_check_query(history: History, tmp_path: Path) -> None:
    h = history
    doc = json.loads(h.checkpoint_file.read_text(encoding="utf-8"))
    assert doc["seq"] == h.head_seq - 1  # the export itself is audited after signing
    assert _head_check(h, h.paths.db) == [(True,)]
    # Truncating the tail leaves a chain the script accepts; the exported checkpoint catches it.
    cut = tampered_copy(
        h, tmp_path, f"DELETE FROM audit_log WHERE tenant_id = '{h.tenant}' AND seq >= {doc['seq']}"
    )
    rc, out = run_script(h, "verify_chain.py", cut, h.tenant)
    assert rc == 0, out
    assert _head_check(h, cut) == []


def test_quotas_doc_overshoot_query(history: History) -> None:
    text = (DOC.parent / "quotas.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", text, re.S)
    assert len(queries) == 1
    con = duckdb.connect(str(history.paths.db), read_only=True)
    try:
        rows = con.execute(queries[0].replace("'acme'", f"'{history.tenant}'")).fetchall()
    finally:
        con.close()
    assert sum(r[1] for r in rows) == 25, rows


def test_every_table_and_column_is_documented(history: History) -> None:
    """The schema is a public contract: each table of a migrated file has a section naming every column."""
    text = DOC.read_text(encoding="utf-8")
    con = duckdb.connect(str(history.paths.db), read_only=True)
    try:
        cols = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ).fetchall()
        version = con.execute("SELECT max(version) FROM schema_version").fetchone()
    finally:
        con.close()
    assert version and f"Current version: **{version[0]}**." in text
    tables: dict[str, list[str]] = {}
    for table, col in cols:
        tables.setdefault(table, []).append(col)
    sections = re.split(r"\n### ", text.split("## Tables", 1)[1].split("\n## ", 1)[0])
    by_table = {s.split("`", 2)[1]: s for s in sections[1:]}
    for table, columns in tables.items():
        if table == "schema_version":
            assert "`schema_version(version INTEGER, applied_at TIMESTAMP)`" in text
            continue
        assert table in by_table, f"table {table} has no section in docs/schema.md"
        for col in columns:
            assert f"`{col}`" in by_table[table], f"column {table}.{col} is not documented"
    assert set(by_table) <= set(tables), (
        f"documented tables that do not exist: {set(by_table) - set(tables)}"
    )
