"""Engine identity without the socket file (issue 9, item 8).

Deleting ``engine.sock`` used to orphan the engine: `engine status` said it was
not running and `engine stop` could not stop it.  Now both find it through the
pid lock, the engine re-creates a deleted socket, and a stop without a socket
sends SIGTERM to the pid once it is verified to be the engine holding the lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest

from core.client import engine_status, lock_holder, ping, stop_engine
from core.errors import EngineUnavailable

from .helpers import Home, poll, wait_gone


def test_status_finds_the_engine_after_its_socket_was_deleted(home: Home) -> None:
    home.start()
    pid = home.pid()
    home.paths.socket.unlink()
    st = engine_status(home.paths)
    assert st["running"] is True and st["pid"] == pid
    assert lock_holder(home.paths) == (True, pid)


def test_cleanup_stops_an_engine_whose_socket_was_deleted() -> None:
    """The fixture's clean-up used to stop only an engine that answered: this one was left running."""
    h = Home()
    try:
        h.start()
        pid = h.pid()
        h.paths.socket.unlink()  # cleaned up before the engine re-creates it (within a second)
    finally:
        h.cleanup()
    wait_gone(pid)


def test_the_engine_recreates_a_deleted_socket(home: Home) -> None:
    home.start()
    pid = home.pid()
    t = home.new_tenant("sock")
    home.paths.socket.unlink()
    info = poll(lambda: ping(home.paths))
    assert info["pid"] == pid
    assert home.paths.socket.stat().st_mode & 0o777 == 0o600
    home.client(t).post("/v1/usage", {"model": "m", "input_tokens": 3})
    home.stop()
    home.start()
    assert home.client(t).post("/v1/audit/verify", {})["ok"] is True
    assert [e["action"] for e in home.audit(t)][-1] == "usage.record"


def test_stop_without_a_socket_signals_the_verified_engine(home: Home) -> None:
    home.start()
    pid = home.pid()
    t = home.new_tenant("sig")
    for i in range(20):
        home.client(t).post("/v1/usage", {"model": "m", "input_tokens": i + 1})
    # A directory where the socket was: the engine cannot bind it again, so only the lock leads to it.
    home.paths.socket.unlink()
    home.paths.socket.mkdir()
    st = engine_status(home.paths)
    assert st["running"] is True and st["answering"] is False and st["pid"] == pid and st["pid_verified"] is True
    res = stop_engine(home.paths)
    assert res == {"stopped": True, "was_running": True, "pid": pid, "via": "signal"}
    wait_gone(pid)
    # The stop was graceful: every write reached the database and the journal is empty.
    assert home.paths.journal.stat().st_size == 0
    assert engine_status(home.paths)["running"] is False
    shutil.rmtree(home.paths.socket)
    home.start()
    assert len(home.audit(t, action="usage.record")) == 20
    assert home.client(t).post("/v1/audit/verify", {})["ok"] is True


def test_a_pid_that_is_not_our_engine_is_never_signalled(home: Home) -> None:
    """The lock is held by a process that is not an engine of this home: report it, signal nothing."""
    home.paths.ensure()
    with open(home.paths.pidfile, "w", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(str(os.getpid()))  # this test process: alive, holding the lock, but no engine
        f.flush()
        st = engine_status(home.paths)
        assert st["running"] is True and st["pid_verified"] is False
        with pytest.raises(EngineUnavailable, match="cannot be verified"):
            stop_engine(home.paths)
    # Still alive (we are the process it named), and with the lock released there is no engine.
    assert engine_status(home.paths)["running"] is False
