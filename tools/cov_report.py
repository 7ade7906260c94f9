"""Print combined line coverage per package (``make cov`` runs this after ``coverage combine``).

One row per top-level package (core, tui, connectors, tutorials) and, indented, one per
subpackage of core and tui; a package's own modules (``core/errors.py`` ...) are the row
``core/*.py``.  Rows below the floor (``fail_under`` in pyproject.toml) are marked, and a
total below it fails the run.  Reads the combined ``.coverage``
in the current directory through coverage's API, so files no test ever imported count too
(``source_pkgs`` in pyproject.toml makes coverage list them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PACKAGES = ("core", "tui", "connectors", "tutorials")
SPLIT = ("core", "tui")  # packages whose subpackages get their own rows


def package_keys(path: str) -> tuple[str, str | None] | None:
    """``("core", "core/engine")`` for ``.../core/engine/server.py``; ``None`` outside the packages."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part in PACKAGES:
            rest = parts[i + 1 :]
            if part not in SPLIT:
                return part, None
            return part, f"{part}/{rest[0]}" if len(rest) > 1 else f"{part}/*.py"
    return None


def pct(covered: int, statements: int) -> float:
    return 100.0 * covered / statements if statements else 100.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floor", type=float, help="the floor in percent (default: fail_under of the config)")
    args = ap.parse_args(argv)

    import coverage

    cov = coverage.Coverage()
    cov.load()
    floor = args.floor if args.floor is not None else float(cov.config.fail_under)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cov.json"
        cov.json_report(outfile=str(out), ignore_errors=True)  # a file deleted since it ran
        files = json.loads(out.read_text(encoding="utf-8"))["files"]

    stmts: dict[str, int] = defaultdict(int)
    hit: dict[str, int] = defaultdict(int)
    for path, info in files.items():
        keys = package_keys(path)
        if keys is None:
            continue
        summary = info["summary"]
        for key in (*keys, "TOTAL"):
            if key is not None:
                stmts[key] += summary["num_statements"]
                hit[key] += summary["covered_lines"]

    print(f"{'package':<22}{'statements':>11}{'missed':>9}{'cover':>9}")
    for top in PACKAGES:
        rows = [top, *sorted(k for k in stmts if k.startswith(top + "/"))]
        for key in rows:
            name = key if key == top else "  " + key
            if not stmts[key]:  # e.g. a package that is only an empty __init__.py so far
                print(f"{name:<22}{0:>11}{0:>9}{'-':>9}")
                continue
            p = pct(hit[key], stmts[key])
            mark = f"  < {floor:g} %" if p < floor else ""
            print(f"{name:<22}{stmts[key]:>11}{stmts[key] - hit[key]:>9}{p:>8.1f}%{mark}")
    total = pct(hit["TOTAL"], stmts["TOTAL"])
    print(f"{'TOTAL':<22}{stmts['TOTAL']:>11}{stmts['TOTAL'] - hit['TOTAL']:>9}{total:>8.1f}%"
          f"  (floor {floor:g} %)")
    return 1 if total < floor else 0


if __name__ == "__main__":
    sys.exit(main())
