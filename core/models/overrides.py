"""Stored registry overrides written by ``musubi models import``: the engine owner's and each tenant's.

One JSON file per scope under ``$MUSUBI_HOME/registry/``: ``owner.json`` (applies to
every tenant) and ``tenant-<hex name>.json``.  Each holds ``{"entries": [...],
"imported": [...]}`` -- registry fields by model id, merged over the shipped data
and config.toml in that order (owner, then tenant).  Writes are atomic (temporary
file, fsync, rename), so a kill -9 leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.models.registry import ConfigError

SCOPES = ("tenant", "user")


class OverrideStore:
    """Reads and writes the override files of one engine home."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "registry"

    def path(self, scope: str, tenant: str | None = None) -> Path:
        if scope == "user":
            return self.dir / "owner.json"
        assert tenant is not None
        return self.dir / f"tenant-{tenant.encode('utf-8').hex()}.json"

    def stamp(self, scope: str, tenant: str | None = None) -> tuple[int, int] | None:
        try:
            st = self.path(scope, tenant).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def read(self, scope: str, tenant: str | None = None) -> dict[str, Any]:
        p = self.path(scope, tenant)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"entries": [], "imported": []}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the registry override {p}: {exc}. Move it aside and import again.") from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ConfigError(f"the registry override {p} is not an object with an 'entries' list; move it aside.")
        return data

    def write(self, scope: str, tenant: str | None, data: dict[str, Any]) -> Path:
        p = self.path(scope, tenant)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return p


def merge_entries(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` entries updated field by field with ``new`` ones (by id), new ids appended."""
    by_id = {e["id"]: dict(e) for e in old if isinstance(e, dict) and "id" in e}
    for e in new:
        by_id[e["id"]] = {**by_id.get(e["id"], {}), **e}
    return list(by_id.values())
