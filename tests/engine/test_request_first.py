"""The sync client sends the request first and starts the engine only when nothing listens.

A refused connection (socket missing, or a stale socket file nobody listens on) fails
before a byte is sent, so the client may start the engine and send once.  A connection
lost after sending is reported and never re-sent: the engine may have carried it out.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

import core.client as client_mod
import core.lifecycle as lifecycle
from core.client import EngineClient
from core.errors import EngineUnavailable
from core.paths import HomePaths

from .helpers import Home


def _count_pings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = lifecycle.transport.ping

    def counting(path: str, timeout: float = 2.0) -> dict[str, Any] | None:
        calls.append(path)
        return real(path, timeout)

    monkeypatch.setattr(lifecycle.transport, "ping", counting)
    return calls


def test_a_running_engine_gets_the_request_without_a_health_probe(eng: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _count_pings(monkeypatch)
    c = EngineClient(eng.paths)
    assert c.get("/v1/whoami")["tenant"] == "default"
    assert c.get("/v1/whoami")["tenant"] == "default"
    assert pings == []
    assert c.start_info is None


def test_no_socket_starts_the_engine_then_sends_once(home: Home) -> None:
    assert not home.paths.socket.exists()
    c = EngineClient(home.paths)
    who = c.get("/v1/whoami")
    assert who["tenant"] == "default"
    assert c.start_info is not None and c.start_info["started"] is True


def test_a_stale_socket_file_is_refused_then_the_engine_starts(home: Home) -> None:
    home.paths.ensure_writable()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(home.paths.socket))
    stale.close()  # the file stays, nobody listens: ECONNREFUSED
    assert home.paths.socket.exists()
    c = EngineClient(home.paths)
    assert c.post("/v1/tenants", {"name": "stalesock"})["name"] == "stalesock"
    assert c.start_info is not None and c.start_info["started"] is True
    # Sent exactly once (a repeated create would have been refused as a duplicate).
    names = [t["name"] for t in c.get("/v1/tenants")]
    assert names.count("stalesock") == 1


def test_without_autostart_a_missing_engine_is_named_and_nothing_starts(home: Home) -> None:
    with pytest.raises(EngineUnavailable, match="not reachable.*musubi engine start"):
        EngineClient(home.paths, autostart=False).get("/v1/whoami")
    assert not home.paths.socket.exists()
    assert lifecycle.lock_holder(home.paths) == (False, None)


def test_a_too_long_home_gets_the_typed_start_error() -> None:
    paths = HomePaths(Path("/tmp/" + "x" * 120))
    with pytest.raises(EngineUnavailable) as info:
        EngineClient(paths).get("/v1/whoami")
    assert info.value.code == "home_path_too_long"


class _HangUp:
    """A socket that accepts one request, reads it, and hangs up without answering."""

    def __init__(self, path: Path) -> None:
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)

    def close(self) -> None:
        # Keeps accepting until closed (a resent request would be a second one); shutdown wakes the
        # blocked accept() at once, where close() alone left it waiting out its 10 s timeout.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def test_a_request_lost_after_sending_is_reported_not_resent(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    home.paths.ensure_writable()
    server = _HangUp(home.paths.socket)
    started: list[HomePaths] = []

    def fake_start(p: HomePaths, *a: object, **k: object) -> dict[str, Any]:
        started.append(p)
        return {}

    monkeypatch.setattr(client_mod, "start_engine", fake_start)
    try:
        with pytest.raises(EngineUnavailable, match="may or may not have been carried out"):
            EngineClient(home.paths).post("/v1/usage", {"model": "m", "input_tokens": 1, "output_tokens": 1})
    finally:
        server.close()
    assert [r.split(b" ", 2)[:2] for r in server.requests] == [[b"POST", b"/v1/usage"]]
    assert started == []


def test_a_socket_of_another_user_is_named_and_nothing_starts(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(client_mod.UnixHTTPConnection, "connect", denied)
    monkeypatch.setattr(client_mod, "start_engine", lambda *a, **k: pytest.fail("must not start an engine"))
    with pytest.raises(EngineUnavailable, match="belongs to another user.*--home"):
        EngineClient(home.paths).get("/v1/whoami")
