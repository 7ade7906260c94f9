"""Every snapshot SVG belongs to a test that still exists.

syrupy fails a serial run on an unused snapshot, but it skips that check under pytest-xdist (its
reports are not merged across workers), and ``make test`` runs on xdist workers: this test keeps the
check.  It collects the modules that own a ``__snapshots__`` folder, in a subprocess, and compares
their test names with the files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def snapshot_files() -> dict[Path, set[str]]:
    """{test module: names of its snapshot files without .svg} for every ``__snapshots__`` folder."""
    out: dict[Path, set[str]] = {}
    for folder in TESTS.rglob("__snapshots__"):
        for module_dir in folder.iterdir():
            module = folder.parent / f"{module_dir.name}.py"
            out[module] = {p.name.removesuffix(".svg") for p in module_dir.glob("*.svg")}
    return out


def collected_names(modules: list[Path]) -> dict[Path, set[str]]:
    """{module: test names as syrupy names their snapshots (``Class.test[id]``)}, by collecting them."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         *map(str, modules)],
        cwd=TESTS.parent, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names: dict[Path, set[str]] = {m: set() for m in modules}
    for line in proc.stdout.splitlines():
        if "::" not in line:
            continue
        path, *parts = line.split("::")
        names.setdefault((TESTS.parent / path).resolve(), set()).add(".".join(parts))
    return names


def test_every_snapshot_has_its_test() -> None:
    files = snapshot_files()
    assert files, "no __snapshots__ folder found: has the layout changed?"
    missing = [m for m in files if not m.exists()]
    assert not missing, f"snapshot folders whose test module is gone: {missing}; delete them"
    names = collected_names(sorted(files))
    unused = {m.name: sorted(files[m] - names[m]) for m in files if files[m] - names[m]}
    assert not unused, (f"snapshots no test takes any more: {unused}; delete them "
                        "(or run those tests with --snapshot-update -n 0)")
