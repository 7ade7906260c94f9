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
    def quarantine(self) -> Path:
        """Journal groups the database refused, one JSON file each (core/engine/quarantine.py)."""
        return self.home / "quarantine"

    def tenant_dir(self, tenant: str) -> Path:
        return self.tenants / tenant

    def ensure(self) -> None:
        """Create the home and its folders, private to the user."""
        for p in (self.home, self.logs, self.tenants):
            p.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(p, 0o700)
