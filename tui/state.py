"""The workstation's context kept across relaunches: mode, tenant, filters, selections, tabs.

One small JSON file per user and Musubi home (``$MUSUBI_HOME/tui/state-<user>.json``), written
atomically (a temporary file renamed over the old one), so a crash or kill never leaves half a
file.  A file that cannot be read or parsed is ignored with a warning, never an error: the
workstation then starts fresh.  ``musubi --fresh`` ignores the file for one launch.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

VERSION = 1


def state_path(home: Path, user: str) -> Path:
    """Where ``user``'s context for this home is kept (the name made safe for a file name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", user) or "_"
    return home / "tui" / f"state-{safe}.json"


class SavedState:
    """Sections of plain JSON values (``"app"``, ``"trace"``, ``"cost"``, ``"admin"``) kept in one file.

    ``path`` None keeps everything in memory (tests, and homes one cannot write).
    """

    def __init__(self, path: Path | None, *, fresh: bool = False) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        self.warning: str | None = None
        if path is not None and not fresh:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            raw = path.read_text("utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            self.warning = f"cannot read the saved context {path} ({exc.strerror}); starting fresh."
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.get("sections", {}).values()):
                raise ValueError("not a JSON object of sections")
        except ValueError as exc:
            self.warning = f"ignored the saved context {path}: it is not valid ({exc}); starting fresh."
            return
        self.data = {str(k): dict(v) for k, v in data.get("sections", {}).items()}

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section (empty if never saved)."""
        return dict(self.data.get(name, {}))

    def update(self, name: str, **values: Any) -> None:
        """Replace values in one section (kept in memory until :meth:`save`)."""
        self.data.setdefault(name, {}).update(values)

    def save(self) -> str | None:
        """Write the file atomically; a reason instead of an exception when it cannot be written."""
        if self.path is None:
            return None
        text = json.dumps({"version": VERSION, "sections": self.data}, indent=1, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            return f"cannot save the workstation context to {self.path}: {exc.strerror or exc}"
        return None
