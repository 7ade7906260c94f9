"""``musubi engine start|stop|status`` and what a client says when no engine can be reached."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap

from .helpers import REPO, Cli, run_musubi, short_home


def test_status_start_status_stop(fresh_home: Cli) -> None:
    cli = fresh_home
    st = cli.js("engine", "status")
    assert st["running"] is False and st["stale"] == [] and st["pid"] is None
    assert st["home"] == str(cli.paths.home) and st["socket"] == str(cli.paths.socket)
    r = cli.ok("engine", "status")
    assert "not running" in r.out

    started = cli.js("engine", "start")
    assert started["started"] is True and started["ok"] is True and isinstance(started["pid"], int)
    again = cli.js("engine", "start")
    assert again["started"] is False and again["pid"] == started["pid"]
    assert "already running" in cli.ok("engine", "start").out

    st = cli.js("engine", "status")
    assert st["running"] is True and st["pid"] == started["pid"]
    for key in ("version", "home", "socket", "database", "schema_version", "started_at", "user"):
        assert key in st
    assert str(started["pid"]) in cli.ok("engine", "status").out

    stopped = cli.js("engine", "stop")
    assert stopped == {"stopped": True, "was_running": True, "pid": started["pid"], "via": "api"}
    assert cli.js("engine", "status")["running"] is False
    again = cli.js("engine", "stop")
    assert again["stopped"] is False and again["was_running"] is False
    assert "no engine was running" in cli.ok("engine", "stop").out


def test_any_command_starts_the_engine(fresh_home: Cli) -> None:
    cli = fresh_home
    assert cli.js("engine", "status")["running"] is False
    me = cli.js("whoami")
    assert me["tenant"] == "default" and "owner" in me["roles"]
    assert cli.js("engine", "status")["running"] is True


def test_status_reports_and_stop_cleans_a_stale_socket(fresh_home: Cli) -> None:
    cli = fresh_home
    cli.paths.ensure()
    # A socket file left by a crashed engine: bound once, nobody listening.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(cli.paths.socket))
    s.close()
    cli.paths.pidfile.write_text("999999999")  # a pid that cannot exist
    st = cli.js("engine", "status")
    assert st["running"] is False
    assert set(st["stale"]) == {"socket", "pidfile"}
    assert "socket" in cli.ok("engine", "status").out
    out = cli.js("engine", "stop")
    assert out["was_running"] is False and out["cleaned"] == ["socket"]
    assert not cli.paths.socket.exists()
    # and a start over the stale pid file works
    assert cli.js("engine", "start")["started"] is True


def test_home_whose_socket_path_is_too_long() -> None:
    base = short_home()
    try:
        home = os.path.join(base, "x" * 100)
        r = run_musubi("whoami", home=home)
        assert r.rc == 1, str(r)
        assert "107" in r.err and "shorter" in r.err and "Traceback" not in r.err
        r = run_musubi("whoami", "--json", home=home)
        assert r.rc == 1
        err = r.json()["error"]
        assert err["code"] == "home_path_too_long" and err["exit_code"] == 1
        r = run_musubi("--home", home, "engine", "start", home=None)
        assert r.rc == 1 and "shorter" in r.err
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_database_locked_by_a_foreign_process(fresh_home: Cli) -> None:
    cli = fresh_home
    cli.paths.ensure()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(cli.paths.db)!r})
            print("held", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = cli.fails(1, "whoami")
        assert "locked" in r.err and str(holder.pid) in r.err
        err = cli("whoami", "--json").json()["error"]
        assert err["code"] == "database_locked" and err["exit_code"] == 1
    finally:
        holder.communicate("", timeout=30)
    # once the other process lets go, the next command starts the engine
    assert cli.js("whoami")["tenant"] == "default"
