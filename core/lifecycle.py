"""The engine's process lifecycle: find, start, stop and describe the engine of a home.

An engine is found through its socket (it answers ``/v1/health``) or, when the socket
was deleted under it, through the exclusive lock it holds on its pid file; a pid is
trusted only once verified to be an engine of this home.  Talking to an engine is
:mod:`core.client`'s job; this module only sends the health probe and the stop request.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core import transport, wire
from core.errors import EngineUnavailable, from_dict
from core.paths import MAX_SOCKET_PATH, HomePaths

START_TIMEOUT_S = 30.0
START_ERROR = "engine-start-error.json"


def ping(paths: HomePaths, timeout: float = 2.0) -> dict[str, Any] | None:
    """``/v1/health`` of the engine of ``paths``, or None when nothing answers."""
    return transport.ping(str(paths.socket), timeout)


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
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
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
        if (
            len(parts) >= 6
            and parts[1] == "FLOCK"
            and parts[4] == str(pid)
            and parts[5].rsplit(":", 1)[-1] == str(inode)
        ):
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
    if (
        pid is None
        or not _pid_alive(pid)
        or not _is_engine_of(pid, paths)
        or _holds_flock(pid, inode) is False
    ):
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
            "running": True,
            "answering": False,
            "problem": problem,
            "home": str(paths.home),
            "socket": str(paths.socket),
            "pid": holder if holder else pid,
            "pid_verified": holder is not None,
            "stale": [],
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
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes (the Unix limit); "
            "use a shorter --home.",
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


def _wait_for(
    paths: HomePaths, deadline: float, proc: subprocess.Popen[bytes] | None, timeout: float
) -> dict[str, Any]:
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
                    f"the engine exited with code {rc} while starting; "
                    f"see {paths.logs / 'engine.out'} and {paths.engine_log}."
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
        _ask_to_stop(paths)
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
            raise EngineUnavailable(
                f"engine pid {pid} belongs to another user; only that user may stop it."
            ) from None
        via = "signal"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return {"stopped": True, "was_running": True, "pid": pid, "via": via}
        time.sleep(0.05)
    raise EngineUnavailable(
        f"engine pid {pid} did not stop within {timeout:.0f}s; kill it with: kill {pid}"
    )


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _ask_to_stop(paths: HomePaths) -> None:
    """``POST /v1/engine/stop`` on an answering engine (never starts one)."""
    req = wire.prepare("POST", "/v1/engine/stop", wire.Identity(), {})
    conn = transport.UnixHTTPConnection(str(paths.socket), 30.0)
    try:
        conn.request(req.method, req.target, body=req.body, headers=req.headers)
        resp = conn.getresponse()
        wire.decode(resp.status, resp.read())
    except (OSError, http.client.HTTPException) as exc:
        raise EngineUnavailable(
            f"lost the connection to the engine: {exc}. Check `musubi engine status`."
        ) from None
    finally:
        conn.close()
