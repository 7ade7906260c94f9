"""Wall time of one CLI command against a running engine, against ``python -c pass``, same run.

Each command is a fresh process, as a user's shell runs it.  The engine is started before
timing (its start-up is not what is measured).  Runs alternate between the commands so
machine noise hits all alike; the first run of each is a warm-up and is not counted.
Reported: the median and its ratio to the bare interpreter's median.  No fixed target:
compare the ratios before and after a change (issue 10 took ``quota status`` from about 6.3× to
5.3× and ``--help`` from 5.1× to 2.9×).  Run it from the repository root so ``python -m tui`` runs
this checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import median, table, temp_home  # noqa: E402


def wall_s(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit; a failing command aborts the benchmark."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True)
    t = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="counted runs per command (default 20)")
    args = ap.parse_args()

    from core.client import start_engine, stop_engine
    from core.paths import HomePaths

    py = sys.executable
    with temp_home("mc") as home:
        paths = HomePaths.resolve(home)
        start_engine(paths)
        try:
            env = {k: v for k, v in os.environ.items() if k != "MUSUBI_TENANT"}
            env["MUSUBI_HOME"] = str(home)
            cmds = {
                "python -c pass": [py, "-c", "pass"],
                "musubi --help": [py, "-m", "tui", "--help"],
                "musubi quota status": [py, "-m", "tui", "quota", "status"],
                "musubi usage record --help": [py, "-m", "tui", "usage", "record", "--help"],
            }
            times: dict[str, list[float]] = {name: [] for name in cmds}
            for i in range(args.runs + 1):  # run 0 of each is the warm-up
                for name, argv in cmds.items():
                    t = wall_s(argv, env)
                    if i:
                        times[name].append(t)
        finally:
            stop_engine(paths)

    base = median(times["python -c pass"])
    rows = [
        [n, len(ts), min(ts) * 1000, median(ts) * 1000, max(ts) * 1000, f"{median(ts) / base:.2f}×"]
        for n, ts in times.items()
    ]
    print(
        table(
            "CLI command wall time (fresh process each), ms",
            ["command", "runs", "min", "median", "max", "÷ python"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
