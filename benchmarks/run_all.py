"""Run every benchmark script in this folder (``make bench``) and print their tables.

Each script measures its own baseline in the same run and reports ratios, so
the figures stay comparable on a shared, noisy machine.  Every ``bench_*.py`` here
runs with its defaults; ``bench_memory.py`` then records 1,000,000 usage records,
which takes several minutes (run it alone with ``--records 100000`` for a quick check), and
``bench_embed.py`` loads the real embedding model (a few minutes on a loaded 2-core machine).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.name}: exit {rc} in {time.perf_counter() - t0:.1f}s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
