"""Where things live: ``$MUSUBI_HOME`` and the files inside it.

``$MUSUBI_HOME`` comes from ``--home``, else the ``MUSUBI_HOME`` environment
variable, else the platform's user data dir (platformdirs).  One engine owns one
home; everything it writes stays under it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

# Unix socket paths are limited to 108 bytes on Linux (sun_path); we check early
# so the user gets a message instead of an OSError from bind().
MAX_SOCKET_PATH = 107


def default_home() -> Path:
    """The home used when neither ``--home`` nor ``MUSUBI_HOME`` is given."""
    import platformdirs

    return Path(platformdirs.user_data_dir("musubi", appauthor=False))


def config_dir() -> Path:
    """Directory of ``config.toml`` (platform config dir, or ``MUSUBI_CONFIG_DIR``)."""
    env = os.environ.get("MUSUBI_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("musubi", appauthor=False))


@dataclass(frozen=True)
class HomePaths:
    """All well-known paths inside one ``$MUSUBI_HOME``."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> HomePaths:
        if home is None:
            env = os.environ.get("MUSUBI_HOME")
            home = env if env else default_home()
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
