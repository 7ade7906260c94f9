"""Requests from a real second OS user (``nobody``), for the rules that judge the socket peer.

Impersonation (``--as``) cannot stand in here: those rules look at the OS user
SO_PEERCRED reports.  The test process forks, the child drops to the other
user's uid and makes one request; only root can do that, so callers skip
otherwise (:func:`need_root`).
"""

from __future__ import annotations

import json
import os
import pwd
import tempfile
from pathlib import Path
from typing import Any

import pytest

from core.client import _UnixHTTPConnection

from .helpers import Home

OTHER = "nobody"


def need_root() -> None:
    """Skip unless the tests may switch uid (they run as root in CI)."""
    if os.getuid() != 0:
        pytest.skip("playing a second OS user needs the tests to run as root")


def open_to_others(h: Home) -> None:
    """Let the other user reach the socket (the home is private to the engine user by default)."""
    os.chmod(h.dir, 0o711)
    os.chmod(h.paths.socket, 0o666)


def public_dir(prefix: str = "pub") -> Path:
    """A folder under /tmp every user can read (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


def raw_as_other(
    h: Home, method: str, path: str, body: Any = None, *, tenant: str | None = None, as_user: str | None = None,
    project: str | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request made by the OS user ``nobody``: (HTTP status, decoded JSON body); ``headers`` added."""
    pw = pwd.getpwnam(OTHER)
    headers = {"X-Musubi-Cwd": "/", **(headers or {})}
    for k, v in (("X-Musubi-Tenant", tenant), ("X-Musubi-As", as_user), ("X-Musubi-Project", project)):
        if v:
            headers[k] = v
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        headers["Content-Type"] = "application/json"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the other user, ask, report through the pipe
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            conn = _UnixHTTPConnection(str(h.paths.socket), 30)
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            out = json.dumps([resp.status, resp.read().decode("utf-8")]).encode()
        except BaseException as exc:  # noqa: BLE001 - anything goes back to the parent as text
            out = json.dumps([-1, repr(exc)]).encode()
            code = 1
        finally:
            with os.fdopen(w, "wb") as f:
                f.write(out)
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    os.waitpid(pid, 0)
    status, text = json.loads(raw)
    assert status != -1, f"request as {OTHER} failed: {text}"
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text
