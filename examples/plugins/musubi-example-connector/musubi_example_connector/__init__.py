"""A connector plug-in for Musubi: a local JSON Lines "logbook" that receives notifications.

Settings (``musubi integrations set logbook path=/var/log/musubi/book.jsonl``): ``path``, the file
to append to.  It implements ``Connector`` (``test``, ``close``) and ``Notifier`` (``send``) of
core/integrations/contracts.py; a real connector would call a vendor's API in the same places and
raise ``IntegrationError`` with the vendor's own text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.integrations.contracts import Delivered, IntegrationError, Message


class Logbook:
    """Appends each message as one JSON line to ``path``."""

    system = "logbook"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        path = str(settings.get("path") or "").strip()
        if not path:
            raise IntegrationError("logbook needs its file: musubi integrations set logbook path=/some/file.jsonl",
                                   kind="config", system=self.system)
        self.path = Path(path).expanduser()

    async def test(self) -> dict[str, Any]:
        folder = self.path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise IntegrationError(f"logbook: cannot write in {folder}; create the folder or pick another path",
                                   kind="config", system=self.system)
        return {"path": str(self.path), "writable": True}

    async def send(self, message: Message, target: str | None = None) -> Delivered:
        line = {"title": message.title, "text": message.text, "facts": dict(message.facts),
                "severity": message.severity}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return Delivered(self.system, str(self.path))

    async def close(self) -> None:
        return None


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> Logbook:
    """The entry point: the tenant's settings and secrets for ``logbook`` -> a connector."""
    return Logbook(settings, secrets)
