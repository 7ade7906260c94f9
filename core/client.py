"""Client of the engine over its Unix socket: the only way the TUI and CLI reach it.

:class:`EngineClient` is synchronous and built on ``http.client`` (stdlib) rather
than aiohttp so that a CLI command starts in milliseconds; :class:`AsyncEngineClient`
uses aiohttp for the TUI and the live event stream.  Both start the engine
when none answers (see :func:`ensure_engine`).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from core.errors import EngineUnavailable, MusubiError, from_dict
from core.paths import MAX_SOCKET_PATH, HomePaths

START_TIMEOUT_S = 30.0
START_ERROR = "engine-start-error.json"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


@dataclass
class Identity:
    """What the client asks for: tenant, impersonation, project, working directory."""

    tenant: str | None = None
    as_user: str | None = None
    project: str | None = None
    cwd: str | None = None

    def headers(self) -> dict[str, str]:
        h = {"X-Musubi-Cwd": self.cwd or _cwd()}
        tenant = self.tenant or os.environ.get("MUSUBI_TENANT")
        if tenant:
            h["X-Musubi-Tenant"] = tenant
        if self.as_user:
            h["X-Musubi-As"] = self.as_user
        if self.project:
            h["X-Musubi-Project"] = self.project
        return h


def _cwd() -> str:
    """The working directory, or '/' when it was deleted under us (no project then)."""
    try:
        return os.getcwd()
    except OSError:
        return "/"


def _path(path: str, query: dict[str, Any] | None) -> str:
    if query:
        q = {k: v for k, v in query.items() if v is not None and v != ""}
        if q:
            return path + "?" + urlencode(q, doseq=True)
    return path


def _raise_for(status: int, raw: bytes) -> None:
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        raise MusubiError(f"engine answered {status} with a non-JSON body.") from None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        raise from_dict(err, status)
    raise MusubiError(f"engine answered HTTP {status}.")


def ping(paths: HomePaths, timeout: float = 2.0) -> dict[str, Any] | None:
    """``/v1/health`` of the engine of ``paths``, or None when nothing answers."""
    if not paths.socket.exists():
        return None
    conn = _UnixHTTPConnection(str(paths.socket), timeout)
    try:
        conn.request("GET", "/v1/health")
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            return None
        data = json.loads(raw)
        return data if isinstance(data, dict) else None
    except (OSError, http.client.HTTPException, json.JSONDecodeError):
        return None
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(paths: HomePaths) -> int | None:
    try:
        txt = paths.pidfile.read_text().strip()
        return int(txt) if txt else None
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        pass
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 else None


def _is_engine_of(pid: int, paths: HomePaths) -> bool:
    """Whether ``pid`` is an engine process (``python -m core.engine``) of this home."""
    args = _cmdline(pid)
    if not args or "core.engine" not in args:
        return False
    try:
        home = args[args.index("--home") + 1]
    except (ValueError, IndexError):
        return HomePaths.resolve().home == paths.home
    return HomePaths.resolve(home).home == paths.home


def _holds_flock(pid: int, inode: int) -> bool | None:
    """Whether /proc/locks shows ``pid`` holding a flock on ``inode`` (None when /proc/locks cannot say)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for ln in lines:
        parts = ln.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF"
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4] == str(pid) and parts[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def lock_holder(paths: HomePaths) -> tuple[bool, int | None]:
    """Whether an engine holds this home's pid lock, and its pid once verified.

    The socket can be deleted under a running engine; the lock cannot.  The pid is
    returned only when that process is an engine of this home (its command line)
    and, where /proc/locks exists, the one holding the lock.
    """
    try:
        fd = os.open(paths.pidfile, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held exclusively: an engine runs (the engine retries if it met this probe)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False, None
        raw = os.read(fd, 64).strip()
        inode = os.fstat(fd).st_ino
    finally:
        os.close(fd)
    pid = int(raw) if raw.isdigit() else None
    if pid is None or not _pid_alive(pid) or not _is_engine_of(pid, paths) or _holds_flock(pid, inode) is False:
        return True, None
    return True, pid


def engine_status(paths: HomePaths) -> dict[str, Any]:
    """Running / not running, with stale socket or pid-file detection.

    An engine that holds the lock but does not answer (its socket was deleted, or it is
    still starting) is reported running with ``answering: false``.
    """
    info = ping(paths)
    if info:
        return {"running": True, "answering": True, **info}
    locked, holder = lock_holder(paths)
    pid = read_pid(paths)
    if locked:
        problem = "socket_missing" if not paths.socket.exists() else "not_answering"
        return {
            "running": True, "answering": False, "problem": problem, "home": str(paths.home),
            "socket": str(paths.socket), "pid": holder if holder else pid, "pid_verified": holder is not None, "stale": [],
        }
    stale = []
    if paths.socket.exists():
        stale.append("socket")
    if pid and not _pid_alive(pid):
        stale.append("pidfile")
    return {
        "running": False,
        "answering": False,
        "home": str(paths.home),
        "socket": str(paths.socket),
        "pid": pid if pid and _pid_alive(pid) else None,
        "stale": stale,
    }


def start_engine(paths: HomePaths, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Launch a detached engine for ``paths`` and wait until it answers.

    ``started`` is true only for the client whose child became the engine; a client
    that lost the race to another starter (or found one already running) reports
    ``started: false`` and ``joined: true`` when it waited for that one.
    """
    info = ping(paths)
    if info:
        return {"started": False, **info}
    if len(str(paths.socket)) > MAX_SOCKET_PATH:
        raise EngineUnavailable(
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes (the Unix limit); use a shorter --home.",
            code="home_path_too_long",
        )
    deadline = time.monotonic() + timeout
    if lock_holder(paths)[0]:
        # Running (or starting) but not answering: its socket was deleted and is re-created
        # within a second, or it is still starting.  Starting another would only fail.
        return _wait_for(paths, deadline, None, timeout)
    paths.ensure_writable()
    err_file = paths.logs / START_ERROR
    with contextlib.suppress(FileNotFoundError):
        err_file.unlink()
    out = open(paths.logs / "engine.out", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ)
    env.pop("MUSUBI_TENANT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.engine", "--home", str(paths.home)],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # survives the terminal or SSH link that started it
        close_fds=True,
        env=env,
        cwd="/",
    )
    out.close()
    return _wait_for(paths, deadline, proc, timeout)


def _wait_for(paths: HomePaths, deadline: float, proc: subprocess.Popen[bytes] | None, timeout: float) -> dict[str, Any]:
    """Poll until an engine answers; ``started`` says whether it is our child ``proc``."""
    err_file = paths.logs / START_ERROR
    delay = 0.02
    while time.monotonic() < deadline:
        info = ping(paths, timeout=1.0)
        if info:
            ours = proc is not None and info.get("pid") == proc.pid
            return {"started": ours, **({} if ours else {"joined": True}), **info}
        rc = proc.poll() if proc is not None else None
        if rc is not None:
            # Another client may have won the race to start it: that one is fine.
            if err_file.exists():
                with contextlib.suppress(json.JSONDecodeError, OSError):
                    body = json.loads(err_file.read_text())
                    if body.get("code") == "already_running":
                        proc = None  # wait for the winner
                        continue
                    raise from_dict(body)
            if not lock_holder(paths)[0]:
                raise EngineUnavailable(
                    f"the engine exited with code {rc} while starting; see {paths.logs / 'engine.out'} and {paths.engine_log}."
                )
            proc = None  # it lost the lock to another starter
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    raise EngineUnavailable(
        f"the engine did not answer within {timeout:.0f}s; see {paths.engine_log}. "
        f"Check `musubi engine status` and retry."
    )


def stop_engine(paths: HomePaths, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the engine to stop gracefully and wait until its process is gone.

    Without an answering socket, an engine still holding the lock is sent SIGTERM
    (the same graceful stop), once its pid is verified to be that engine.
    """
    info = ping(paths)
    if info:
        pid = int(info["pid"])
        EngineClient(paths, autostart=False).post("/v1/engine/stop", {})
        via = "api"
    else:
        locked, holder = lock_holder(paths)
        if not locked:
            st = engine_status(paths)
            cleaned = []
            if "socket" in st["stale"]:
                with contextlib.suppress(FileNotFoundError):
                    paths.socket.unlink()
                cleaned.append("socket")
            return {"stopped": False, "was_running": False, "cleaned": cleaned}
        if holder is None:
            raise EngineUnavailable(
                f"an engine holds the lock of {paths.home} but does not answer, and pid {read_pid(paths)} in "
                f"{paths.pidfile} cannot be verified as that engine; find it with: fuser {paths.pidfile}"
            )
        pid = holder
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return {"stopped": True, "was_running": True, "pid": pid, "via": "signal"}
        except PermissionError:
            raise EngineUnavailable(f"engine pid {pid} belongs to another user; only that user may stop it.") from None
        via = "signal"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return {"stopped": True, "was_running": True, "pid": pid, "via": via}
        time.sleep(0.05)
    raise EngineUnavailable(f"engine pid {pid} did not stop within {timeout:.0f}s; kill it with: kill {pid}")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class EngineClient:
    """Synchronous client; each call is one request on a fresh connection."""

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
        self._checked = False

    def _ensure(self) -> None:
        if self._checked:
            return
        if self.autostart and not ping(self.paths):
            start_engine(self.paths)
        self._checked = True

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> Any:
        with self.stream(method, path, body, query) as resp:
            raw = self.guarded_read(resp.read)
        return json.loads(raw) if raw else None

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        """One request whose successful answer is read by the caller (an export's content); errors raise typed."""
        self._ensure()
        data = json.dumps(body).encode() if body is not None else None
        headers = self.identity.headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = _UnixHTTPConnection(str(self.paths.socket), self.timeout)
        try:
            try:
                conn.request(method, _path(path, query), body=data, headers=headers)
                resp = conn.getresponse()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise EngineUnavailable(
                    f"the engine at {self.paths.socket} is not reachable ({exc.strerror}). "
                    "Start it with: musubi engine start"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise EngineUnavailable(f"lost the connection to the engine: {exc}. Check `musubi engine status`.") from None
            if resp.status >= 400:
                _raise_for(resp.status, self.guarded_read(resp.read))
            yield resp
        finally:
            conn.close()

    @staticmethod
    def guarded_read(read: Callable[..., bytes], *args: Any) -> bytes:
        try:
            return read(*args)
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnavailable(f"lost the connection to the engine: {exc}. Check `musubi engine status`.") from None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body or {})

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, query=query)


def seg(value: str) -> str:
    """Quote one path segment."""
    return quote(value, safe="")


class AsyncEngineClient:
    """aiohttp client for the TUI: requests plus the server-sent event stream."""

    def __init__(self, paths: HomePaths | None = None, identity: Identity | None = None) -> None:
        self.paths = paths or HomePaths.resolve()
        self.identity = identity or Identity()
        self._session: Any = None

    async def _sess(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.paths.socket)),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self._session

    async def ensure_engine(self) -> dict[str, Any]:
        import asyncio

        return await asyncio.to_thread(start_engine, self.paths)

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> Any:
        import aiohttp

        s = await self._sess()
        try:
            async with s.request(
                method, "http://musubi" + _path(path, query), json=body, headers=self.identity.headers(),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    _raise_for(resp.status, raw)
                return json.loads(raw) if raw else None
        except aiohttp.ClientError as exc:
            raise EngineUnavailable(f"engine not reachable: {exc}") from None

    async def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, query=query)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.request("POST", path, body=body or {})

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        return await self.request("PUT", path, body=body)

    async def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return await self.request("DELETE", path, query=query)

    async def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        """Yield events from ``/v1/events`` until the connection ends (raises EngineUnavailable)."""
        import aiohttp

        s = await self._sess()
        try:
            async with s.get(
                "http://musubi/v1/events", params={"types": types}, headers=self.identity.headers(),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=45),
            ) as resp:
                if resp.status >= 400:
                    _raise_for(resp.status, await resp.read())
                data_lines: list[str] = []
                async for raw in resp.content:
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("data: "):
                        data_lines.append(line[6:])
                    elif line == "" and data_lines:
                        yield json.loads("\n".join(data_lines))
                        data_lines = []
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EngineUnavailable(f"event stream lost: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
