"""A real engine process on a short temporary ``MUSUBI_HOME``, and ways to talk to it.

Every connection comes from the OS user running the tests (the engine reads it
with SO_PEERCRED), who owns each tenant it creates; other users are played by
impersonation (``Identity(as_user=...)``), which that ownership allows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.client import (
    EngineClient,
    Identity,
    _UnixHTTPConnection,
    ping,
    read_pid,
    start_engine,
    stop_engine,
)
from core.paths import HomePaths

_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A tenant/user/project name not used before in this test run."""
    return f"{prefix}-{os.getpid() % 10000}-{next(_names)}"


def utc_iso() -> str:
    """Now in UTC, as the engine's ``--before``/``--since`` parsers accept it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


class Home:
    """One temporary home and (at most) one engine serving it."""

    def __init__(self) -> None:
        # Short on purpose: the socket path must stay under 107 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
        self.paths = HomePaths(self.dir)
        self._cwd = "/"  # never inside a registered project unless a test says so

    # -- process ------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        return start_engine(self.paths, timeout=60)

    def stop(self) -> None:
        stop_engine(self.paths)

    def pid(self) -> int:
        info = ping(self.paths)
        assert info, "engine is not answering"
        return int(info["pid"])

    def kill9(self) -> int:
        """SIGKILL the engine (pid from /v1/health) and wait until it is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        return pid

    def cleanup(self) -> None:
        """Stop whatever runs here (gracefully, else by its pid) and remove the home."""
        try:
            # Not only when it answers: stop_engine finds an engine through its pid lock, so one
            # whose socket a test deleted is stopped too instead of outliving its removed home.
            self.stop()
        except Exception:
            pid = read_pid(self.paths)
            if pid and pid != os.getpid():  # a test may have written its own pid there
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients ------------------------------------------------------------------------

    def client(
        self, tenant: str | None = None, as_user: str | None = None, project: str | None = None, cwd: str | None = None
    ) -> EngineClient:
        ident = Identity(tenant=tenant, as_user=as_user, project=project, cwd=cwd or self._cwd)
        return EngineClient(self.paths, ident, autostart=False, timeout=30)

    def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        tenant: str | None = None,
        as_user: str | None = None,
        project: str | None = None,
        cwd: str | None = None,
        raw_body: bytes | None = None,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request with the HTTP status kept (the typed client only raises); ``headers`` added."""
        headers = {"X-Musubi-Cwd": cwd or self._cwd, **(headers or {})}
        if project:
            headers["X-Musubi-Project"] = project
        if tenant:
            headers["X-Musubi-Tenant"] = tenant
        if as_user:
            headers["X-Musubi-As"] = as_user
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = _UnixHTTPConnection(str(self.paths.socket), timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8")
        finally:
            conn.close()
        try:
            return resp.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return resp.status, text

    # -- setup shortcuts ----------------------------------------------------------------

    def new_tenant(self, prefix: str = "t", members: dict[str, str] | None = None) -> str:
        """A fresh tenant owned by the test's OS user, with ``members`` {user: role} bound."""
        name = unique(prefix)
        self.client().post("/v1/tenants", {"name": name})
        c = self.client(name)
        for user, role in (members or {}).items():
            c.post("/v1/members", {"user": user, "role": role})
        return name

    def head_seq(self, tenant: str) -> int:
        return int(self.client().get(f"/v1/tenants/{tenant}")["audit_head_seq"])

    def audit(self, tenant: str, **filters: Any) -> list[dict[str, Any]]:
        """Audit events of ``tenant`` (read as its owner), oldest first."""
        q = {"limit": 10_000, "ascending": "1", **filters}
        return list(self.client(tenant).get("/v1/audit", q))

    def quota(self, tenant: str, metric: str, period: str, user: str | None = None) -> dict[str, Any]:
        st = self.client(tenant).get("/v1/quotas")
        for q in st["quotas"]:
            if q["metric"] == metric and q["period"] == period and q["user"] == user:
                return dict(q)
        raise AssertionError(f"no {metric}/{period} quota for {user} in {tenant}: {st}")


def wait_gone(pid: int, timeout: float = 60.0) -> None:
    """Wait until ``pid`` has exited, reaping it when it is our child (else it lingers as a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: gone once its /proc entry is gone or a zombie
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            except (OSError, IndexError):
                return
            if state == "Z":
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit")


def poll(fn: Any, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Call ``fn`` until it returns something truthy; fail after ``timeout`` seconds.

    The timeout is a hang guard, not a speed check: the suite runs under xdist on a shared machine, where
    an engine answers slowly but surely, so it is generous."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {v!r})")
        time.sleep(interval)



def routes_app() -> Any:
    """The engine's aiohttp app over a stand-in engine: for reading its route table only."""
    import asyncio
    from types import SimpleNamespace

    from core.engine.server import build_app

    def operation(_name: str) -> Any:
        return lambda *_a, **_k: None

    stand_in: Any = SimpleNamespace(runner=None, operation=operation)
    return build_app(stand_in, asyncio.Event())


@contextlib.contextmanager
def home_fixture(
    *, start: bool = False, env: Mapping[str, str] | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> Iterator[Home]:
    """The body of every home fixture: a fresh :class:`Home` (its engine started if ``start``), with ``env``
    set while it lives (engines started later inherit it), cleaned up afterwards.

    ``with home_fixture(start=True, env={...}) as h: yield h``.  A function-scoped fixture passes the
    test's ``monkeypatch``, so a test that changes the same variables undoes them in one place.
    """
    with contextlib.ExitStack() as stack:
        mp = monkeypatch or stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        h = Home()
        try:
            if start:
                h.start()
            yield h
        finally:
            h.cleanup()
