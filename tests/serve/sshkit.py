"""An SSH server in the test's event loop against the real engine, and an asyncssh client for it."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from core.paths import HomePaths
from tests.engine.helpers import Home
from tui.serve.engine_link import EngineLink
from tui.serve.ssh import SSHOptions, SSHServer

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


class RecordingLink(EngineLink):
    """The real engine link, remembering each audited remote event (the system log's ones too)."""

    def __init__(self, paths: HomePaths, ttl_s: int, mode: str = "ssh") -> None:
        super().__init__(paths, mode, ttl_s)
        self.events: list[dict[str, Any]] = []

    async def event(self, event: str, **kw: Any) -> bool:
        ok = await super().event(event, **kw)
        self.events.append({"event": event, "ok": ok, **kw})
        return ok

    def reasons(self, event: str) -> list[str]:
        return [str(e.get("reason")) for e in self.events if e["event"] == event]


def keys_file(h: Home, lines: list[str], name: str = "ssh_keys") -> Path:
    p = Path(h.dir) / name
    p.write_text("".join(ln + "\n" for ln in lines))
    os.chmod(p, 0o600)
    return p


def key_line(key: asyncssh.SSHKey, user: str, tenant: str) -> str:
    return f"musubi:user={user},tenant={tenant} {key.export_public_key().decode().strip()}"


async def server(h: Home, keys: Path, **opts: Any) -> tuple[SSHServer, RecordingLink]:
    o = SSHOptions(keys=keys, port=0, **opts)
    link = RecordingLink(h.paths, o.ttl_s)
    srv = SSHServer(h.paths, o, link)
    await srv.start()
    return srv, link


@dataclass
class Screen(asyncssh.SSHClientSession[bytes]):
    """The client's side of a session: everything received, and how it ended."""

    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    exit_status: int | None = None

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        (self.err if datatype == asyncssh.EXTENDED_DATA_STDERR else self.out).extend(data)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def text(self, since: int = 0) -> str:
        """What was drawn since byte ``since``, escapes removed."""
        return ANSI.sub(b"", bytes(self.out[since:])).decode("utf-8", "replace")

    async def wait_for(self, needle: str | bytes, since: int = 0, timeout: float = 60) -> None:
        """Until ``needle`` was received (text: in the drawn text; bytes: raw), else fail with what came."""
        async def until() -> None:
            while not (needle in bytes(self.out[since:]) if isinstance(needle, bytes) else needle in self.text(since)):
                if self.closed.is_set():
                    raise AssertionError(f"session closed before {needle!r}: {self.err.decode()!r}")
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {needle!r} within {timeout} s; got {self.text(since)[-500:]!r}") from None


async def connect(srv: SSHServer, key: asyncssh.SSHKey, username: str = "root") -> asyncssh.SSHClientConnection:
    return await asyncssh.connect("127.0.0.1", srv.port, username=username, client_keys=[key], known_hosts=None,
                                  agent_path=None, config=None)


async def open_tui(conn: asyncssh.SSHClientConnection, size: tuple[int, int] = (80, 24),
                   term: str | None = "xterm-256color",
                   env: dict[str, str] | None = None) -> tuple[asyncssh.SSHClientChannel[bytes], Screen]:
    chan, screen = await conn.create_session(Screen, term_type=term, term_size=size, encoding=None, env=env or {})
    return chan, screen
