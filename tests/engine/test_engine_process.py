"""The engine process and its database file: one engine per home, stale files, unusable databases.

Each test has a private home.  Start-up failures reach the launching client as
typed errors with stable codes and a message that says what to do.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.audit import verify_rows
from core.client import EngineClient, engine_status, ping, start_engine
from core.errors import EngineUnavailable, StorageError
from core.paths import HomePaths

from .helpers import Home

HOLD_DB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()  # hold the file until the test closes our stdin
"""


def test_second_start_reports_the_running_engine(home: Home) -> None:
    first = home.start()
    assert first["started"] is True
    again = start_engine(home.paths)
    assert again["started"] is False and again["pid"] == first["pid"]
    # A second engine process launched by hand refuses and names the running one.
    r = subprocess.run(
        [sys.executable, "-m", "core.engine", "--home", str(home.dir)],
        capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert r.returncode == 1
    assert "already running" in r.stderr and str(first["pid"]) in r.stderr
    info = ping(home.paths)
    assert info and info["pid"] == first["pid"]
    assert home.paths.pidfile.read_text().strip() == str(first["pid"])


def test_stale_socket_and_pidfile_of_a_killed_engine_are_cleaned(home: Home) -> None:
    first = home.start()
    home.client().post("/v1/tenants", {"name": "survivor"})
    old = home.kill9()
    assert home.paths.socket.exists()  # left behind by kill -9
    st = engine_status(home.paths)
    assert st["running"] is False and set(st["stale"]) == {"socket", "pidfile"} and st["pid"] is None
    with pytest.raises(EngineUnavailable, match="musubi engine start"):
        EngineClient(home.paths, autostart=False).get("/v1/whoami")
    info = home.start()
    assert info["started"] is True and info["pid"] != old == first["pid"]
    assert home.paths.pidfile.read_text().strip() == str(info["pid"])
    assert stat.S_IMODE(home.paths.socket.stat().st_mode) == 0o600
    assert "survivor" in {t["name"] for t in home.client().get("/v1/tenants")}


def test_autostart_client_starts_the_engine(home: Home) -> None:
    assert ping(home.paths) is None
    me = EngineClient(home.paths).get("/v1/whoami")  # autostart=True
    assert me["tenant"] == "default" and me["roles"] == ["owner"]
    assert ping(home.paths)


def test_graceful_stop_flushes_and_the_file_verifies_offline(home: Home) -> None:
    home.start()
    t = home.new_tenant("gs", {"a": "viewer", "b": "viewer"})
    head = home.head_seq(t)
    home.stop()
    assert not home.paths.socket.exists()
    con = duckdb.connect(str(home.paths.db), read_only=True)
    try:
        rows = con.execute(
            "SELECT seq, strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), actor, action, resource, outcome, details, "
            "prev_hash, hash "
            "FROM audit_log WHERE tenant_id = ? ORDER BY seq",
            [t],
        ).fetchall()
    finally:
        con.close()
    res = verify_rows(t, rows)
    assert res.ok and res.checked == head


def test_database_locked_by_a_foreign_process(home: Home) -> None:
    home.paths.ensure()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DB, str(home.paths.db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        with pytest.raises(StorageError) as ei:
            start_engine(home.paths, timeout=60)
        assert ei.value.code == "database_locked"
        assert "locked by another process" in ei.value.message and str(home.paths.db) in ei.value.message
        assert "close any duckdb shell" in ei.value.message and f"PID {holder.pid}" in ei.value.message
        assert ping(home.paths) is None
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    # Once the other process lets go, the engine starts.
    assert home.start()["started"] is True


def test_database_from_a_newer_schema_version(home: Home) -> None:
    home.start()
    home.stop()
    con = duckdb.connect(str(home.paths.db))
    con.execute("INSERT INTO schema_version VALUES (999, now()::TIMESTAMP)")
    con.close()
    before = home.paths.db.read_bytes()
    with pytest.raises(StorageError) as ei:
        home.start()
    assert ei.value.code == "schema_too_new"
    assert "999" in ei.value.message and "Upgrade" in ei.value.message
    assert ping(home.paths) is None
    con = duckdb.connect(str(home.paths.db), read_only=True)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (999,)
    finally:
        con.close()
    assert len(home.paths.db.read_bytes()) == len(before)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_database_file(home: Home, kind: str) -> None:
    if kind == "garbage":
        home.paths.ensure()
        home.paths.db.write_bytes(b"this is not a duckdb file\n" * 4096)
    else:
        home.start()
        home.new_tenant("tr")
        home.stop()
        data = home.paths.db.read_bytes()
        home.paths.db.write_bytes(data[: len(data) // 3])
    before = home.paths.db.read_bytes()
    with pytest.raises(StorageError) as ei:
        home.start()
    assert ei.value.code == "database_corrupt", ei.value.to_dict()
    assert "corrupt" in ei.value.message and "restore a backup" in ei.value.message
    assert ping(home.paths) is None
    assert home.paths.db.read_bytes() == before  # nothing half-done: the file is left as it was


def test_home_path_too_long_is_refused_before_starting(tmp_path: Path) -> None:
    deep = Path("/tmp") / ("mh" + "x" * 120)
    try:
        with pytest.raises(EngineUnavailable) as ei:
            start_engine(HomePaths(deep))
        assert ei.value.code == "home_path_too_long" and "shorter" in ei.value.message
    finally:
        for p in sorted(deep.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        if deep.exists():
            deep.rmdir()


def test_engine_files_are_private(home: Home) -> None:
    home.start()
    for p in (home.paths.home, home.paths.logs, home.paths.tenants):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    assert stat.S_IMODE(home.paths.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.paths.signing_key.stat().st_mode) == 0o600
    assert os.stat(home.paths.db).st_size > 0
