"""Client of the engine over its Unix socket: the only way the TUI and CLI reach it.

:class:`EngineClient` is synchronous and built on ``http.client`` (stdlib) rather
than aiohttp so that a CLI command starts in milliseconds; :class:`AsyncEngineClient`
uses aiohttp for the TUI and the live event stream.  Both start the engine
when none answers (see :func:`ensure_engine`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
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


def engine_status(paths: HomePaths) -> dict[str, Any]:
    """Running / not running, with stale socket or pid-file detection."""
    info = ping(paths)
    if info:
        return {"running": True, **info}
    pid = read_pid(paths)
    stale = []
    if paths.socket.exists():
        stale.append("socket")
    if pid and not _pid_alive(pid):
        stale.append("pidfile")
    return {
        "running": False,
        "home": str(paths.home),
        "socket": str(paths.socket),
        "pid": pid if pid and _pid_alive(pid) else None,
        "stale": stale,
    }


def start_engine(paths: HomePaths, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Launch a detached engine for ``paths`` and wait until it answers."""
    info = ping(paths)
    if info:
        return {"started": False, **info}
    if len(str(paths.socket)) > MAX_SOCKET_PATH:
        raise EngineUnavailable(
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes (the Unix limit); use a shorter --home.",
            code="home_path_too_long",
        )
    paths.ensure()
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
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        info = ping(paths, timeout=1.0)
        if info:
            return {"started": True, **info}
        rc = proc.poll()
        if rc is not None:
            # Another client may have won the race to start it: that one is fine.
            info = ping(paths, timeout=1.0)
            if info:
                return {"started": False, **info}
            if err_file.exists():
                with contextlib.suppress(json.JSONDecodeError, OSError):
                    body = json.loads(err_file.read_text())
                    if body.get("code") == "already_running":
                        time.sleep(0.1)
                        continue
                    raise from_dict(body)
            raise EngineUnavailable(
                f"the engine exited with code {rc} while starting; see {paths.logs / 'engine.out'} and {paths.engine_log}."
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    raise EngineUnavailable(
        f"the engine did not answer within {timeout:.0f}s; see {paths.engine_log}. "
        f"Check `musubi engine status` and retry."
    )


def stop_engine(paths: HomePaths, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the engine to stop gracefully and wait until its process is gone."""
    info = ping(paths)
    if not info:
        st = engine_status(paths)
        cleaned = []
        if "socket" in st["stale"]:
            with contextlib.suppress(FileNotFoundError):
                paths.socket.unlink()
            cleaned.append("socket")
        return {"stopped": False, "was_running": False, "cleaned": cleaned}
    pid = int(info["pid"])
    EngineClient(paths, autostart=False).post("/v1/engine/stop", {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return {"stopped": True, "was_running": True, "pid": pid}
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
                raw = resp.read()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise EngineUnavailable(
                    f"the engine at {self.paths.socket} is not reachable ({exc.strerror}). "
                    "Start it with: musubi engine start"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise EngineUnavailable(f"lost the connection to the engine: {exc}. Check `musubi engine status`.") from None
        finally:
            conn.close()
        if resp.status >= 400:
            _raise_for(resp.status, raw)
        return json.loads(raw) if raw else None

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
