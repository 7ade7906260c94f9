"""The signed-in user's own files: the engine session id and the providers' token caches.

All under :func:`sso_dir` (``MUSUBI_SSO_DIR``, else the platform's user state dir + ``/sso``),
created 0700, every file 0600 and written whole (a temporary file renamed over the old one).
Nothing here is ever sent to a log or stored by the engine: the engine keeps only the hash of
a session id, and refresh tokens never leave these files (docs/identity.md#what-is-stored-where).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from core.config import env


def sso_dir(*, create: bool = True) -> Path:
    """The folder of the user's session and token files (created 0700 unless ``create`` is False)."""
    chosen = env("MUSUBI_SSO_DIR")
    if chosen:
        d = Path(chosen).expanduser()
    else:
        import platformdirs

        d = Path(platformdirs.user_state_dir("musubi", appauthor=False)) / "sso"
    if not create:
        return d
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(d, 0o700)
    return d


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _home_key(home: Path) -> str:
    return hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]


def session_file(home: Path, *, create: bool = True) -> Path:
    """Where the engine session for ``home`` is kept (one per engine home)."""
    return sso_dir(create=create) / f"session-{_home_key(home)}.json"


def save_session(home: Path, session: str, provider: str, expires_at: str) -> Path:
    path = session_file(home)
    write_private(path, json.dumps({"session": session, "provider": provider, "expires_at": expires_at,
                                    "home": str(home), "saved": int(time.time())}).encode())
    return path


def read_session(home: Path) -> dict[str, Any] | None:
    """The saved session for ``home``, or None (missing, unreadable or not ours)."""
    try:
        path = session_file(home, create=False)
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None  # another user's file, or readable by others: never send it
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("session"), str) else None


def load_session(home: Path) -> str | None:
    """The session id to send to the engine of ``home`` (``X-Musubi-Sso-Session``), if any."""
    got = read_session(home)
    return str(got["session"]) if got else None


class LiveSession:
    """The session id of ``home``, re-read whenever the session file changes (a running TUI picks up
    ``musubi login`` / ``logout`` at its next request).

    Calling it costs one ``stat``; the file is read again only when its identity (inode, size,
    mtime) differs from the last read, and a file that vanished means "signed out".
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._seen: tuple[int, int, int] | None = None
        self._value: str | None = None

    def __call__(self) -> str | None:
        try:
            st = session_file(self.home, create=False).stat()
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            seen = None
        if seen != self._seen or seen is None:
            self._value = load_session(self.home) if seen is not None else None
            self._seen = seen
        return self._value


def clear_session(home: Path) -> bool:
    try:
        session_file(home).unlink()
        return True
    except FileNotFoundError:
        return False


def token_file(provider: str, kind: str) -> Path:
    """The token cache of ``provider`` (``msal`` for Entra, ``oidc`` for the generic client)."""
    return sso_dir() / f"{kind}-{hashlib.sha256(provider.encode()).hexdigest()[:12]}.json"


def save_tokens(provider: str, data: dict[str, Any]) -> None:
    write_private(token_file(provider, "oidc"), json.dumps(data).encode())


def load_tokens(provider: str) -> dict[str, Any] | None:
    try:
        data = json.loads(token_file(provider, "oidc").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def forget_tokens(provider: str) -> list[str]:
    """Delete the provider's token caches; the names of the files removed."""
    gone = []
    for kind in ("oidc", "msal"):
        path = token_file(provider, kind)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            gone.append(str(path))
        lock = path.with_name(path.name + ".lockfile")
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
    return gone
