"""``musubi serve ssh``: an SSH server (asyncssh) giving each connection its own pty and TUI process.

Who a client is comes from its public key alone (``keys.py``); the SSH user name is never
looked at.  Only public-key authentication is offered; no port, agent or X11 forwarding,
no exec, no subsystems (sftp): a session is a pty running the workstation or nothing, and
a session without a pty is told so and closed.  Each session:

1. is counted against the session caps (``guard.py``);
2. gets a session token from the engine for the key's (user, tenant) (``engine_link.py``);
3. is audited as ``remote.login`` (refused log-ins as ``remote.refused``, the end as
   ``remote.logout`` with its reason: quit, disconnect, idle);
4. runs ``python -m tui.remote`` on a new pty (its controlling terminal) with a clean
   environment (``spawn.py``), the token on an inherited pipe;
5. forwards keys to the pty and the screen back, and the client's window size to the pty
   (the kernel then sends the TUI SIGWINCH);
6. ends, revoking the token, when the TUI quits, the client goes, or no input came for the
   idle timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import struct
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from core.errors import MusubiError
from core.paths import HomePaths
from tui.serve.engine_link import EngineLink
from tui.serve.guard import FailureLimiter, SessionCaps, idle_sweep
from tui.serve.hostkey import host_key
from tui.serve.keys import KeyEntry, KeyRing
from tui.serve.spawn import child_env, colorterm_of, term_of, token_pipe, tui_argv

log = logging.getLogger("musubi.serve")


@dataclass
class SSHOptions:
    """How ``musubi serve ssh`` runs (the CLI's options; docs/remote.md#options)."""

    keys: Path
    host: str = "127.0.0.1"
    port: int = 2222
    max_sessions: int = 8
    max_per_user: int = 2
    idle_timeout: float = 900.0
    auth_failures: int = 5
    auth_window: float = 60.0
    login_timeout: float = 30.0
    ttl_s: int = 8 * 3600
    no_animations: bool = False


def set_winsize(fd: int, cols: int, rows: int) -> None:
    """The pty's window size (the kernel tells the foreground process group with SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(rows, 1), max(cols, 1), 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    """(columns, rows) of a pty."""
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


class SSHServer:
    """The listening server, its limits and its live sessions."""

    def __init__(self, paths: HomePaths, opts: SSHOptions, link: EngineLink | None = None) -> None:
        self.paths, self.opts = paths, opts
        self.keys = KeyRing(opts.keys)
        self.link = link or EngineLink(paths, "ssh", opts.ttl_s)
        self.limiter = FailureLimiter(opts.auth_failures, opts.auth_window)
        self.caps = SessionCaps(opts.max_sessions, opts.max_per_user)
        self.sessions: set[TuiSession] = set()
        self._listener: asyncssh.SSHAcceptor | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self.host_key, self.new_host_key = host_key(paths.home)
        self.port = opts.port

    async def start(self) -> None:
        """Start the engine if needed, then listen."""
        await self.link.start()
        self._listener = await asyncssh.create_server(
            lambda: _Connection(self), self.opts.host, self.opts.port,
            server_host_keys=[self.host_key], config=None, encoding=None, line_editor=False,
            allow_pty=True, agent_forwarding=False, x11_forwarding=False, allow_scp=False,
            login_timeout=self.opts.login_timeout, keepalive_interval=30, keepalive_count_max=3,
            public_key_auth=True, password_auth=False, kbdint_auth=False, host_based_auth=False,
            gss_host=None, rdns_lookup=False,
        )
        sock = self._listener.sockets[0] if self._listener.sockets else None
        if sock is not None:
            self.port = sock.getsockname()[1]
        self._idle_task = asyncio.create_task(self._idle_sweep())

    async def close(self) -> None:
        """Stop listening and end every session (each revoked and audited)."""
        if self._idle_task:
            self._idle_task.cancel()
        if self._listener:
            self._listener.close()
            await self._listener.wait_closed()
        await asyncio.gather(*(s.end("server stopping") for s in list(self.sessions)), return_exceptions=True)
        await self.link.close()

    async def _idle_sweep(self) -> None:
        notice = f"no input for {int(self.opts.idle_timeout)} s; disconnected."
        await idle_sweep(self.opts.idle_timeout, lambda: [s for s in self.sessions if s.started],
                         lambda s: s.end("idle", notice=notice))



class _Connection(asyncssh.SSHServer):
    """One client connection: authentication by key, then its session."""

    def __init__(self, server: SSHServer) -> None:
        self.srv = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.addr = "?"
        self.client = "ssh ?"
        self.candidate: KeyEntry | None = None
        self.entry: KeyEntry | None = None
        self.refused_keys: list[str] = []
        self.blocked = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.addr = str(peer[0])
        self.client = f"ssh {peer[0]}:{peer[1]}"
        if self.srv.limiter.blocked(self.addr):
            self.blocked = True
            wait = self.srv.limiter.retry_after(self.addr)
            if self.srv.limiter.first_in_window(f"blocked {self.addr}"):
                asyncio.ensure_future(self.srv.link.event(
                    "refused", client=self.client, reason=f"too many failed authentications; blocked for {wait} s"))
            conn.close()

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate; the name itself means nothing here

    def public_key_auth_supported(self) -> bool:
        return not self.blocked

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self.blocked or self.srv.limiter.blocked(self.addr):
            self.blocked = True
            return False
        entry = self.srv.keys.lookup(key)
        if entry is None:
            self.refused_keys.append(str(key.get_fingerprint("sha256")))
            self.srv.limiter.failed(self.addr)
            return False
        # asyncssh checks the signature after this answer; the entry counts only once
        # auth_completed says the client proved it holds the key.
        self.candidate = entry
        return True

    def auth_completed(self) -> None:
        self.entry = self.candidate
        if self.entry:
            self.client = f"{self.client} key {self.entry.fingerprint}"

    def session_requested(self) -> Any:
        if self.entry is None:
            return False
        return TuiSession(self.srv, self.entry, self.client, self.conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.entry is None and not self.blocked:
            if not self.refused_keys:  # connected and never offered a key: a scan counts as a failure too
                self.srv.limiter.failed(self.addr)
            keys = ", ".join(self.refused_keys[:5]) or "none"
            asyncio.ensure_future(self.srv.link.event(
                "refused", client=self.client, reason=f"no authorized key (offered: {keys})"))


class TuiSession(asyncssh.SSHServerSession[bytes]):
    """One SSH session: a pty and the TUI process on it."""

    def __init__(self, server: SSHServer, entry: KeyEntry, client: str,
                 conn: asyncssh.SSHServerConnection | None) -> None:
        self.srv, self.entry, self.client, self.conn = server, entry, client, conn
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.term: str | None = None
        self.size: tuple[int, int] | None = None
        self.command: str | None = None
        self.master: int | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.session_id: str | None = None
        self.counted = False
        self.started = False
        self.last_input = time.monotonic()
        self._ended = False
        self._reading = False

    # -- asyncssh callbacks -----------------------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        self.term = term_type
        self.size = (term_size[0] or 80, term_size[1] or 24)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command  # accepted only to be told why not (session_started)
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        asyncio.ensure_future(self._start())

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.last_input = time.monotonic()
        if self.master is not None:
            # OSError: the TUI is gone (the reader ends the session), or a paste larger than the
            # pty's input buffer met a TUI that is not reading (the rest is dropped, as a terminal would).
            with contextlib.suppress(OSError):
                os.write(self.master, data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.last_input = time.monotonic()
        self.size = (width or 80, height or 24)
        if self.master is not None:
            set_winsize(self.master, *self.size)

    def eof_received(self) -> bool:
        # Keep the channel half-open: the server closes it (after its message and exit status), not
        # a client whose stdin ended (`ssh HOST cmd < /dev/null` sends EOF at once).
        return True

    def pause_writing(self) -> None:
        self._stop_reading()

    def resume_writing(self) -> None:
        self._start_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        asyncio.ensure_future(self.end("disconnect"))

    # -- the session ------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self.chan is not None and not self.chan.is_closing():
            self.chan.write_stderr(f"musubi: {text}\r\n".encode())

    async def _refuse(self, text: str, reason: str) -> None:
        self._say(text)
        await self.srv.link.event("refused", user=self.entry.user, tenant=self.entry.tenant, client=self.client,
                                  reason=reason)
        if self.chan is not None:
            self.chan.exit(1)

    async def _start(self) -> None:
        e = self.entry
        if self.command is not None or self.size is None:
            what = "runs no commands" if self.command is not None else "needs a terminal"
            await self._refuse(f"this server {what}; it serves the Musubi workstation only. Connect with: ssh -t "
                               f"-p {self.srv.port} HOST", "no pty" if self.command is None else "exec refused")
            return
        why = self.srv.caps.refuse(e.user)
        if why:
            await self._refuse(why + ".", f"session cap: {why}")
            return
        self.counted = True
        try:
            minted = await self.srv.link.mint(e.user, e.tenant, self.client)
        except MusubiError as exc:  # the engine audited its refusal
            self._say(f"your key is {e.user} in tenant {e.tenant}, but the engine refused a session: {exc.message}")
            await self.end("refused", audit=False, exit_status=1)
            return
        self.session_id = minted["id"]
        if not await self.srv.link.event("login", user=e.user, tenant=e.tenant, client=self.client,
                                         reason=f"session {minted['id']}"):
            self._say("your log-in could not be recorded, so it is refused; try again later.")
            await self.end("audit failed", audit=False, exit_status=1)
            return
        if self._ended:  # the client left while we asked the engine
            await self.srv.link.revoke(minted["id"], "disconnect")
            return
        await self._spawn(minted["token"])

    async def _spawn(self, token: str) -> None:
        e, (cols, rows) = self.entry, self.size or (80, 24)
        master, slave = os.openpty()
        set_winsize(master, cols, rows)
        fd = token_pipe(token)
        term = term_of(self.term)
        client_env = self.chan.get_environment() if self.chan is not None else {}
        env = child_env(term, colorterm_of(term, client_env.get("COLORTERM")))
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *tui_argv(self.srv.paths.home, e.tenant, e.user, fd, no_animations=self.srv.opts.no_animations),
                stdin=slave, stdout=slave, stderr=slave, env=env, cwd="/", pass_fds=(fd,),
                start_new_session=True,  # tui.remote then makes the pty its controlling terminal
            )
        except OSError as exc:
            os.close(master)
            self._say(f"could not start the workstation: {exc.strerror}.")
            await self.end("spawn failed", exit_status=1)
            return
        finally:
            os.close(slave)
            os.close(fd)
        self.master = master
        os.set_blocking(master, False)
        self.srv.sessions.add(self)
        self.started = True
        self.last_input = time.monotonic()
        self._start_reading()
        asyncio.ensure_future(self._wait_child())

    def _start_reading(self) -> None:
        if self.master is not None and not self._reading:
            asyncio.get_running_loop().add_reader(self.master, self._pump)
            self._reading = True

    def _stop_reading(self) -> None:
        if self.master is not None and self._reading:
            asyncio.get_running_loop().remove_reader(self.master)
            self._reading = False

    def _pump(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every process on the pty closed it (the TUI exited)
            data = b""
        if not data:
            self._stop_reading()
            return
        if self.chan is not None and not self.chan.is_closing():
            self.chan.write(data)

    async def _wait_child(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        # Let the last frame (the restored screen) through before the channel closes.
        await asyncio.sleep(0.05)
        with contextlib.suppress(OSError):
            while self.master is not None and (data := os.read(self.master, 65536)):
                if self.chan is not None and not self.chan.is_closing():
                    self.chan.write(data)
        await self.end("quit", exit_status=code if code >= 0 else 1)

    async def end(self, reason: str, *, notice: str | None = None, audit: bool = True,
                  exit_status: int | None = None) -> None:
        """End the session once: stop the TUI, revoke the token, release the cap, audit the log-out."""
        if self._ended:
            return
        self._ended = True
        self.srv.sessions.discard(self)
        if notice:
            self._say(notice)
        self._stop_reading()
        await self._stop_child()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        if self.session_id:
            await self.srv.link.revoke(self.session_id, reason)
        if self.counted:
            self.srv.caps.closed(self.entry.user)
            self.counted = False
        if audit and self.session_id:
            await self.srv.link.event("logout", user=self.entry.user, tenant=self.entry.tenant, client=self.client,
                                      reason=reason)
        if self.chan is not None and not self.chan.is_closing():
            self.chan.exit(exit_status if exit_status is not None else 0)
        if reason == "idle" and self.conn is not None:
            self.conn.close()

    async def _stop_child(self) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        for sig, wait in ((signal.SIGHUP, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)  # its own session and process group (start_new_session)
            try:
                await asyncio.wait_for(p.wait(), wait)
                return
            except TimeoutError:
                continue
