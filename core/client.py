"""Clients of the engine over its Unix socket: the only way the TUI and CLI reach it.

:class:`EngineClient` is synchronous and built on ``http.client`` (stdlib) rather
than aiohttp so that a CLI command starts in milliseconds; :class:`AsyncEngineClient`
(:mod:`core.async_client`, re-exported here) uses aiohttp for the TUI and the live event
stream.  Both send the typed calls of :mod:`core.api.calls` (``client.call(calls.whoami())``),
and build requests and decode answers with :mod:`core.wire`.

The sync client sends the request first and starts the engine (:mod:`core.lifecycle`)
only when the connection is refused or the socket is missing: that failure happens
before a byte is sent, so sending again after the start cannot run anything twice.
A connection lost after the request was sent is reported, never re-sent.

The lifecycle functions are re-exported here for the callers that predate the split.
"""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from core.api.calls import Call
from core.async_client import AsyncEngineClient
from core.errors import EngineUnavailable
from core.lifecycle import (
    START_ERROR,
    START_TIMEOUT_S,
    engine_status,
    lock_holder,
    ping,
    read_pid,
    start_engine,
    stop_engine,
)
from core.paths import MAX_SOCKET_PATH, HomePaths
from core.transport import UnixHTTPConnection
from core.wire import Identity, Verbs, prepare, raise_for

__all__ = [
    "START_ERROR", "START_TIMEOUT_S", "AsyncEngineClient", "Call", "EngineClient", "Identity", "engine_status",
    "lock_holder", "ping", "read_pid", "start_engine", "stop_engine",
]

# Tests and tools open raw connections under this name.
_UnixHTTPConnection = UnixHTTPConnection

# Failures of connect() that mean "no engine listens here": nothing was sent yet.
_NOT_LISTENING = (FileNotFoundError, ConnectionRefusedError)

T = TypeVar("T")


def _lost(exc: BaseException) -> EngineUnavailable:
    return EngineUnavailable(
        f"lost the connection to the engine: {exc}. The request may or may not have been carried out; "
        "check before retrying (`musubi engine status`)."
    )


class EngineClient(Verbs[Any]):
    """Synchronous client; each call is one request on a fresh connection.

    With ``autostart`` (the default), a refused connection starts the engine (or waits
    for the one another client is starting) and the request is then sent once.
    """

    def __init__(
        self,
        paths: HomePaths | None = None,
        identity: Identity | None = None,
        *,
        autostart: bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.paths = paths or HomePaths.resolve()
        self.identity = identity or Identity()
        self.autostart = autostart
        self.timeout = timeout
        self.start_info: dict[str, Any] | None = None  # what start_engine said, when this client started one

    def _connect(self, conn: UnixHTTPConnection) -> None:
        """Connect, starting the engine when nothing listens (before any byte is sent)."""
        sock = self.paths.socket
        if len(str(sock)) <= MAX_SOCKET_PATH:
            try:
                conn.connect()
                return
            except _NOT_LISTENING as exc:
                if not self.autostart:
                    raise EngineUnavailable(
                        f"the engine at {sock} is not reachable ({exc.strerror}). Start it with: musubi engine start"
                    ) from None
            except PermissionError:
                raise EngineUnavailable(
                    f"the engine socket {sock} belongs to another user; use a home of your own (--home DIR)."
                ) from None
            except OSError as exc:
                raise EngineUnavailable(f"cannot connect to the engine at {sock}: {exc}.") from None
        # start_engine names a too-long socket path, and every typed start-up failure.
        self.start_info = start_engine(self.paths)
        try:
            conn.connect()
        except OSError as exc:
            raise EngineUnavailable(
                f"the engine started but its socket {sock} refused the connection ({exc}). Check `musubi engine status`."
            ) from None

    def call(self, c: Call[T]) -> T:
        """Send one typed call (:mod:`core.api.calls`); return its answer or raise its typed error."""
        answer: T = self.request(c.method, c.path, c.body, c.query)
        return answer

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON answer or raise its typed error."""
        with self.stream(method, path, body, query) as resp:
            raw = self.guarded_read(resp.read)
        return json.loads(raw) if raw else None

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        """One request whose successful answer is read by the caller (an export's content); errors raise typed."""
        req = prepare(method, path, self.identity, body, query)
        conn = UnixHTTPConnection(str(self.paths.socket), self.timeout)
        try:
            self._connect(conn)
            try:
                conn.request(req.method, req.target, body=req.body, headers=req.headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise _lost(exc) from None
            if resp.status >= 400:
                raise_for(resp.status, self.guarded_read(resp.read))
            yield resp
        finally:
            conn.close()

    @staticmethod
    def guarded_read(read: Callable[..., bytes], *args: Any) -> bytes:
        """``read(*args)`` with a lost connection reported as :class:`EngineUnavailable`."""
        try:
            return read(*args)
        except (OSError, http.client.HTTPException) as exc:
            raise _lost(exc) from None
