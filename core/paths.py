"""Where things live: ``$MUSUBI_HOME`` and the files inside it.

``$MUSUBI_HOME`` comes from ``--home``, else the ``MUSUBI_HOME`` environment
variable, else the platform's user data dir (platformdirs).  One engine owns one
home; everything it writes stays under it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from core.config import config_dir, env_home

__all__ = ["MAX_SOCKET_PATH", "HomePaths", "config_dir", "default_cache_dir", "default_home", "is_within",
           "os_identity", "readable_by", "system_path_reason"]

# Unix socket paths are limited to 108 bytes on Linux (sun_path); we check early
# so the user gets a message instead of an OSError from bind().
MAX_SOCKET_PATH = 107


def default_home() -> Path:
    """The home used when neither ``--home`` nor ``MUSUBI_HOME`` is given."""
    import platformdirs

    return Path(platformdirs.user_data_dir("musubi", appauthor=False))


def default_cache_dir() -> Path:
    """The user's cache folder (platformdirs), shared by every home: the extracted embedding model lives here.

    Things here can be rebuilt from installed packages, so a home does not carry its own copy.
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("musubi", appauthor=False))


@dataclass(frozen=True)
class HomePaths:
    """All well-known paths inside one ``$MUSUBI_HOME``."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> HomePaths:
        if home is None:
            home = env_home() or default_home()
        return cls(Path(home).expanduser().resolve())

    @property
    def db(self) -> Path:
        return self.home / "musubi.duckdb"

    @property
    def socket(self) -> Path:
        return self.home / "engine.sock"

    @property
    def journal(self) -> Path:
        return self.home / "journal.wal"

    @property
    def pidfile(self) -> Path:
        return self.home / "engine.pid"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def engine_log(self) -> Path:
        return self.logs / "engine.log"

    @property
    def signing_key(self) -> Path:
        return self.home / "audit-signing.key"

    @property
    def tenants(self) -> Path:
        return self.home / "tenants"

    @property
    def exports(self) -> Path:
        """The one folder inside the home that exports may be written to (docs/api.md#export-files)."""
        return self.home / "exports"

    @property
    def scratch(self) -> Path:
        """The engine's private folder for export content on its way to a client."""
        return self.home / "tmp"

    @property
    def quarantine(self) -> Path:
        """Journal groups the database refused, one JSON file each (core/engine/quarantine.py)."""
        return self.home / "quarantine"

    def tenant_dir(self, tenant: str) -> Path:
        return self.tenants / tenant

    def ensure_writable(self) -> None:
        """:meth:`ensure`, then make sure the engine can write here; else a typed error naming the path and the fix.

        A read-only home (mounted read-only, or without write permission) would otherwise
        fail deep inside the engine's start with an OSError nobody can act on.
        """
        from core.errors import EngineUnavailable

        def refuse(path: Path, why: str) -> EngineUnavailable:
            return EngineUnavailable(
                f"cannot use MUSUBI_HOME {self.home}: {path} is not writable ({why}). The engine must write its "
                f"database, journal and logs there: make it writable (e.g. chmod u+w {path}) or choose another "
                "home with --home DIR or MUSUBI_HOME.",
                code="home_not_writable", path=str(path),
            )

        try:
            self.ensure()
        except OSError as exc:
            raise refuse(Path(exc.filename or self.home), exc.strerror or str(exc)) from None
        for folder in (self.home, self.logs):
            probe = folder / f".write-test-{os.getpid()}"
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise refuse(folder, exc.strerror or str(exc)) from None
            os.close(fd)
            with contextlib.suppress(OSError):
                probe.unlink()
        for f in (self.db, self.journal, self.pidfile, self.engine_log):
            if f.exists() and not os.access(f, os.W_OK):
                raise refuse(f, "no write permission")

    def ensure(self) -> None:
        """Create the home and its folders, private to the user."""
        for p in (self.home, self.logs, self.tenants, self.exports):
            p.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(p, 0o700)


def is_within(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (both absolute and normalised; no file system access)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def os_identity(user: str) -> tuple[int, frozenset[int]] | None:
    """(uid, group ids) of an OS user name as the engine names socket peers (``uidN`` when unnamed)."""
    import pwd

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        if user.startswith("uid") and user[3:].isdigit():
            return int(user[3:]), frozenset()
        return None
    try:
        groups = frozenset(os.getgrouplist(pw.pw_name, pw.pw_gid))
    except OSError:
        groups = frozenset({pw.pw_gid})
    return pw.pw_uid, groups


def _mode_allows(st: os.stat_result, uid: int, gids: frozenset[int], bits: int) -> bool:
    if st.st_uid == uid:
        mode = (st.st_mode >> 6) & 7
    elif st.st_gid in gids:
        mode = (st.st_mode >> 3) & 7
    else:
        mode = st.st_mode & 7
    return mode & bits == bits


def readable_by(path: str, uid: int, gids: frozenset[int]) -> bool:
    """Could ``uid`` (in groups ``gids``) read the resolved ``path``, judged by mode bits?

    Search (x) on every folder above it, read (r) on it, and search too when it is a
    folder: the kernel's rule for owner, group and others.  uid 0 may read anything.
    POSIX ACLs and capabilities are not consulted, so access granted only through an
    ACL counts as no access (the safe side for an engine reading on someone's behalf).
    """
    if uid == 0:
        return True
    p = os.path.realpath(path)
    try:
        st = os.stat(p)
        d = p
        while d != "/":
            d = os.path.dirname(d)
            if not _mode_allows(os.stat(d), uid, gids, 1):
                return False
    except OSError:
        return False
    return _mode_allows(st, uid, gids, 5 if stat.S_ISDIR(st.st_mode) else 4)


# Folders that are never a project: the system's own trees (refused with everything inside
# them) and the top-level folders that hold everyone's files (refused themselves only).
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/boot", "/root", "/run")
SHARED_TOPS = ("/", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr", "/var", "/home", "/tmp", "/opt", "/srv",
               "/mnt", "/media", "/nix")


def system_path_reason(real: str) -> str | None:
    """Why the resolved folder ``real`` cannot be a project, or None when it may be."""
    for tree in SYSTEM_TREES:
        if is_within(real, tree):
            return f"it is inside the system folder {tree}"
    if real in SHARED_TOPS:
        return "it is a top-level system folder holding everyone's files"
    return None
