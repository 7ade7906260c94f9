"""``musubi serve`` as users run it: the real CLI in a subprocess, and OpenSSH's own ``ssh`` as the client.

OpenSSH is a client nobody here wrote: it requests the pty, sends its window size and TERM, and
pins the host key, which must be the same after a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import Home

from .helpers import actions
from .sshkit import ANSI

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def musubi(h: Home, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tui.cli", "--home", str(h.dir), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def started(p: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert p.stdout is not None
    first = p.stdout.readline()
    assert first, (p.wait(), p.stderr.read() if p.stderr else b"")
    return dict(json.loads(first))


def stop(p: subprocess.Popen[bytes]) -> int:
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=60)


class Reader(threading.Thread):
    """Everything a process writes on a pipe, collected in the background."""

    def __init__(self, pipe: Any) -> None:
        super().__init__(daemon=True)
        self.pipe, self.data = pipe, bytearray()
        self.start()

    def run(self) -> None:
        while chunk := os.read(self.pipe.fileno(), 65536):
            self.data.extend(chunk)

    def text(self) -> str:
        return ANSI.sub(b"", bytes(self.data)).decode("utf-8", "replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while needle not in self.text():
            assert self.is_alive(), f"closed before {needle!r}: {self.text()[-400:]!r}"
            assert time.monotonic() < end, f"no {needle!r}; got {self.text()[-400:]!r}"
            time.sleep(0.1)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_openssh_reaches_the_workstation_and_the_host_key_stays(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("cli", {"mia": "member"})
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys = tmp_path / "keys"
    keys.write_text(f"musubi:user=mia,tenant={t} {(tmp_path / 'id_ed25519.pub').read_text()}")
    keys.chmod(0o600)
    server = musubi(eng, "serve", "ssh", "--port", "0", "--authorized-keys", str(keys))
    try:
        info = started(server)
        port = info["listening"].rsplit(":", 1)[1]
        known = tmp_path / "known_hosts"
        ssh = subprocess.Popen(
            ["ssh", "-tt", "-i", str(key), "-p", port, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=accept-new", "nobody@127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**ENV, "TERM": "xterm-256color"})
        out = Reader(ssh.stdout)
        out.wait_for(f" {t} │ mia │")
        assert ssh.stdin is not None
        ssh.stdin.write(b"\x11")  # ctrl+q: quit the workstation
        ssh.stdin.flush()
        assert ssh.wait(timeout=60) == 0
        assert stop(server) == 0
    finally:
        if server.poll() is None:
            server.kill()
    logout = actions(eng, t, "remote.logout")
    assert [e["details"]["reason"] for e in logout] == ["quit"]
    assert known.read_text().count("ssh-ed25519") == 1
    # A restarted server keeps its host key: the pinned one still matches (StrictHostKeyChecking=yes).
    again = musubi(eng, "serve", "ssh", "--port", port, "--authorized-keys", str(keys))
    try:
        second = started(again)
        assert second["host_key"] == info["host_key"] and second["new_host_key"] is False
        check = subprocess.run(
            ["ssh", "-i", str(key), "-p", port, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "root@127.0.0.1", "id"],
            capture_output=True, timeout=60, env=ENV)
        assert check.returncode == 1 and b"runs no commands" in check.stderr, check
    finally:
        stop(again)
    assert (os.stat(eng.paths.home / "ssh_host_ed25519_key").st_mode & 0o777) == 0o600


def test_serve_ssh_without_a_keys_file_says_how_to_make_one(eng: Home, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "tui.cli", "--home", str(eng.dir), "serve", "ssh", "--authorized-keys",
                        str(tmp_path / "none")], capture_output=True, env=ENV, timeout=60)
    assert p.returncode == 2 and b"no keys file at" in p.stderr and b"musubi:user=NAME,tenant=TENANT" in p.stderr


def test_serve_web_prints_its_token_once_and_it_signs_in(eng: Home) -> None:
    import urllib.error
    import urllib.parse
    import urllib.request

    t = eng.new_tenant("cli", {"mia": "member"})
    server = musubi(eng, "--tenant", t, "serve", "web", "--port", "0", "--user", "mia")
    try:
        info = started(server)
        assert info["token_sign_in"] and len(info["token"]) >= 40 and info["origin"] == info["url"]
        data = urllib.parse.urlencode({"token": info["token"]}).encode()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a: Any, **k: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        req = urllib.request.Request(f"{info['url']}/login", data=data, headers={"Origin": info["origin"]})
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(req, timeout=30)
        assert e.value.code == 302 and "musubi_web=" in e.value.headers["Set-Cookie"]
        assert "HttpOnly" in e.value.headers["Set-Cookie"] and "SameSite=Strict" in e.value.headers["Set-Cookie"]
    finally:
        assert stop(server) == 0
    assert server.stdout is not None and info["token"].encode() not in server.stdout.read()  # printed once
    assert [e["details"]["reason"] for e in actions(eng, t, "remote.login")] == ["sign-in (token)"]


def test_serve_web_needs_a_user_for_its_token(eng: Home) -> None:
    p = subprocess.run([sys.executable, "-m", "tui.cli", "--home", str(eng.dir), "serve", "web"], capture_output=True,
                       env=ENV, timeout=60)
    assert p.returncode == 2 and b"--user USER" in p.stderr


def test_serve_web_oidc_needs_a_users_file_and_a_configured_provider(eng: Home, tmp_path: Path) -> None:
    def web(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "tui.cli", "--home", str(eng.dir), "serve", "web", "--port", "0",
                               "--no-token", *args], capture_output=True, env=ENV, timeout=60)

    p = web("--oidc", "corp")
    assert p.returncode == 2 and b"--oidc needs --oidc-users FILE" in p.stderr, p.stderr
    users = tmp_path / "oidc-users"
    users.write_text("musubi:user=mia,tenant=acme mia@example.com\n")
    users.chmod(0o600)
    p = web("--oidc", "corp", "--oidc-users", str(users))  # this engine's config.toml has no [sso] providers
    assert p.returncode == 2 and b"defines no such provider" in p.stderr and b"Traceback" not in p.stderr, p.stderr


def test_serve_sessions_lists_live_sessions_for_the_engine_user_only(eng: Home) -> None:
    from .helpers import mint

    t = eng.new_tenant("cli", {"mia": "owner"})
    s = mint(eng, "mia", t, client="ssh 192.0.2.1:5000")
    run = [sys.executable, "-m", "tui.cli", "--home", str(eng.dir), "--json", "serve", "sessions"]
    p = subprocess.run(run, capture_output=True, env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [r for r in json.loads(p.stdout) if r["id"] == s["id"]]
    assert rows and rows[0]["client"] == "ssh 192.0.2.1:5000" and "token" not in rows[0]
    p = subprocess.run([*run[:-2], "--tenant", t, "--as", "mia", "serve", "sessions"], capture_output=True, env=ENV,
                       timeout=60)
    assert p.returncode == 4 and b"only the OS user who runs the engine" in p.stderr
