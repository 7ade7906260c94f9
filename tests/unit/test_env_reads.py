"""Environment variables are read through ``core.config.env`` only, so its ``ENVIRONMENT`` table
(and docs/tui.md "Environment", checked against it) lists every variable the workstation reads."""

from __future__ import annotations

import re
from pathlib import Path

from core.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
# A direct read: os.environ.get(...), os.environ[...], os.getenv(...).
READ = re.compile(r"os\.(environ\.get\(|environ\[|getenv\()\s*(\S*)")
# A write (os.environ[NAME] = ...) is not a read: the search worker sets the hub's offline switches.
WRITE = re.compile(r"os\.environ\[[^\]]+\]\s*=[^=]")


def test_core_reads_no_variable_behind_the_table() -> None:
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        if path.name == "config.py" and path.parent.name == "core":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if READ.search(line) and not WRITE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "read these through core.config.env (and list them in ENVIRONMENT):\n" + "\n".join(found)


def test_the_tui_reads_no_musubi_variable_directly() -> None:
    found = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = READ.search(line)
            if m and "MUSUBI_" in m.group(2):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_musubi_variable_named_in_code_is_in_the_table() -> None:
    named = set()
    for base in ("core", "tui"):
        for path in (ROOT / base).rglob("*.py"):
            named |= set(re.findall(r"[\"'](MUSUBI_[A-Z_]+)[\"']", path.read_text(encoding="utf-8")))
    assert named <= set(ENVIRONMENT), sorted(named - set(ENVIRONMENT))
