"""``musubi serve ssh`` end to end: a real engine, the server in the test's loop, asyncssh as the client.

Each accepted connection runs the real workstation (``python -m tui.remote``) on its own pty
as the key's musubi user, through an engine-minted session token.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh
import pytest

from tests.engine.helpers import Home
from tui.serve.spawn import KEPT
from tui.serve.ssh import get_winsize

from .helpers import actions, raw
from .sshkit import connect, key_line, keys_file, open_tui, server


@pytest.fixture
def key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


async def test_a_key_gets_its_own_tui_as_its_user_and_resizes(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh", {"mia": "member"})
    srv, link = await server(eng, keys_file(eng, [key_line(key, "mia", t)]))
    try:
        # The SSH user name ("root") means nothing: the key is mia's.
        async with await connect(srv, key, username="root") as conn:
            # What the client sends in its environment is not passed on, but a truecolor COLORTERM.
            sent = {"COLORTERM": "truecolor", "LD_PRELOAD": "/tmp/evil.so", "MUSUBI_HOME": "/tmp/evil",
                    "PYTHONPATH": "/tmp/evil"}
            chan, screen = await open_tui(conn, env=sent)
            await screen.wait_for(f" {t} │ mia │")  # the status line: the engine knows the TUI as mia
            (session,) = srv.sessions
            assert get_winsize(session.master) == (80, 24)
            assert session.proc is not None and session.proc.returncode is None
            env = _environ(session.proc.pid)
            assert env["TERM"] == "xterm-256color" and set(env) <= {*KEPT, "TERM", "COLORTERM"}, env
            assert env["COLORTERM"] == "truecolor" and "LD_PRELOAD" not in env and "MUSUBI_HOME" not in env
            assert env.get("PYTHONPATH") == os.environ.get("PYTHONPATH")  # the server's, never the client's
            cmdline = Path(f"/proc/{session.proc.pid}/cmdline").read_bytes()
            assert not any("mst_" in v for v in env.values()) and b"mst_" not in cmdline  # the token came by pipe
            mark = len(screen.out)
            chan.change_terminal_size(100, 30)
            await screen.wait_for(b"\x1b[30;", since=mark)  # the TUI redrew a 30th row: it got SIGWINCH
            await screen.wait_for(f"F8 tenant {t} │ user mia", since=mark)  # the 100-column status line
            assert get_winsize(session.master) == (100, 30)
            sid = session.session_id
            assert sid in {r["id"] for r in raw(eng, "GET", "/v1/sessions")[1]}
            chan.close()
            await asyncio.wait_for(screen.closed.wait(), 30)
        await _until(lambda: not srv.sessions)
        await _until(lambda: any(e["event"] == "logout" for e in link.events))
        assert sid not in {r["id"] for r in raw(eng, "GET", "/v1/sessions")[1]}  # revoked at disconnect
    finally:
        await srv.close()
    log = [(e["action"], e["outcome"]) for e in eng.audit(t) if e["action"].startswith(("session.", "remote."))]
    # Minted, logged in, first used by the TUI (once), then revoked and logged out at disconnect.
    assert log == [("session.mint", "success"), ("remote.login", "success"), ("session.use", "success"),
                   ("session.revoke", "success"), ("remote.logout", "success")], log
    logout = actions(eng, t, "remote.logout")[-1]
    assert logout["details"]["user"] == "mia" and logout["details"]["reason"] == "disconnect"
    assert "key SHA256:" in logout["details"]["client"]


def _environ(pid: int) -> dict[str, str]:
    raw_env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in raw_env if b"=" in e)


async def _until(cond, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


async def test_no_pty_or_a_command_gets_a_message_and_is_closed(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh", {"mia": "member"})
    srv, link = await server(eng, keys_file(eng, [key_line(key, "mia", t)]))
    try:
        async with await connect(srv, key) as conn:
            shell = await conn.run(term_type=None)  # a shell without a pty
            assert shell.exit_status == 1 and "needs a terminal" in str(shell.stderr), shell
            # stdin at its end at once (`ssh HOST cmd < /dev/null`): the message still arrives
            ran = await conn.run("cat /etc/passwd", input="")
            assert ran.exit_status == 1 and "runs no commands" in str(ran.stderr) and "root:" not in str(ran.stdout)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.start_sftp_client()
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", 22)
        assert not srv.sessions
    finally:
        await srv.close()
    refused = actions(eng, t, "remote.refused")
    assert [e["details"]["reason"] for e in refused] == ["no pty", "exec refused"]
    assert not actions(eng, t, "session.mint")  # nothing was minted for them


async def test_an_unknown_key_is_refused_and_failures_are_rate_limited(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh", {"mia": "member"})
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    srv, link = await server(eng, keys_file(eng, [key_line(key, "mia", t)]), auth_failures=2, auth_window=600)
    try:
        for _ in range(2):
            with pytest.raises(asyncssh.PermissionDenied):
                await connect(srv, stranger, username="mia")  # naming the user gains nothing
        # Blocked now: even the right key is refused until the window passes.
        with pytest.raises((asyncssh.Error, OSError)):
            conn = await connect(srv, key)
            await conn.run(term_type=None)
        await _until(lambda: len([e for e in link.events if e["event"] == "refused"]) >= 3)
    finally:
        await srv.close()
    reasons = [e["reason"] for e in link.events if e["event"] == "refused"]
    fp = stranger.get_fingerprint("sha256")
    assert sum(f"no authorized key (offered: {fp})" == r for r in reasons) == 2, reasons
    assert any("too many failed authentications" in r for r in reasons), reasons
    assert all(e["ok"] for e in link.events)  # each one reached the engine's audit log
    assert not actions(eng, t, "session.")


async def test_idle_sessions_are_closed_and_caps_hold(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh", {"mia": "member"})
    srv, link = await server(eng, keys_file(eng, [key_line(key, "mia", t)]), idle_timeout=4, max_per_user=1)
    try:
        async with await connect(srv, key) as conn:
            chan, screen = await open_tui(conn)
            await screen.wait_for("│ mia │")
            # A second session of mia is over her cap: told, closed, audited.
            chan2, second = await open_tui(conn)
            await asyncio.wait_for(second.closed.wait(), 30)
            assert second.exit_status == 1 and "already has 1 session" in second.err.decode()
            # No input for the idle timeout: the session is closed with a notice.
            await asyncio.wait_for(screen.closed.wait(), 60)
            assert "no input for 4 s" in screen.err.decode()
    finally:
        await srv.close()
    logout = actions(eng, t, "remote.logout")
    assert [e["details"]["reason"] for e in logout] == ["idle"]
    assert any("session cap" in e["details"].get("reason", "") for e in actions(eng, t, "remote.refused"))


async def test_a_key_for_a_user_without_a_role_gets_the_engines_refusal(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh")
    srv, link = await server(eng, keys_file(eng, [key_line(key, "zed", t)]))
    try:
        async with await connect(srv, key) as conn:
            chan, screen = await open_tui(conn)
            await asyncio.wait_for(screen.closed.wait(), 30)
            assert screen.exit_status == 1
            assert "zed in tenant" in screen.err.decode() and "has no role there" in screen.err.decode()
    finally:
        await srv.close()
    denied = [e for e in actions(eng, t, "session.mint") if e["outcome"] == "denied"]
    assert denied and not actions(eng, t, "remote.login")
    assert os.path.exists(eng.paths.home / "ssh_host_ed25519_key")


async def test_connections_that_never_offer_a_key_count_as_failures(eng: Home, key: asyncssh.SSHKey) -> None:
    t = eng.new_tenant("ssh", {"mia": "member"})
    srv, link = await server(eng, keys_file(eng, [key_line(key, "mia", t)]), auth_failures=2, auth_window=600)
    try:
        for _ in range(2):  # a scanner: connects, reads the banner, leaves
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            assert (await reader.readline()).startswith(b"SSH-2.0-")
            writer.close()
            await writer.wait_closed()
        await _until(lambda: len(link.reasons("refused")) >= 2)
        with pytest.raises((asyncssh.Error, OSError)):
            conn = await connect(srv, key)
            await conn.run(term_type=None)
    finally:
        await srv.close()
    reasons = link.reasons("refused")
    assert reasons[:2] == ["no authorized key (offered: none)"] * 2
    assert sum("too many failed authentications" in r for r in reasons) == 1, reasons
