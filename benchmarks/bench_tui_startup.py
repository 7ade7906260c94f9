"""Process start to first painted frame: ``musubi`` against a bare Textual app, same run.

Both apps run in a pseudo-terminal of 80×24 with TERM=xterm-256color (no COLORTERM,
as over SSH).  The clock starts just before the process is spawned and stops when the
app has written its first frame to the terminal, detected the same way for both: a
marker text that only the first frame contains ("Dashboard" in musubi's mode bar, the
bare app's single Static).  The process is then killed.  Runs alternate between the
apps so machine noise hits both alike; the first run of each is a warm-up (disk and
bytecode caches) and is not counted.  musubi talks to a real engine on a temporary
home, started before timing: its connection is made in a worker after the first frame,
so it must not delay it.  (musubi's first frame holds the mode bar, the dashboard and the
status bar; the footer of key hints is mounted right after it with textual.lazy.Lazy.)

Target (issue 3): musubi's median ≤ 1.5 × the bare app's median.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import median, table, temp_home  # noqa: E402

TARGET = 1.5
TIMEOUT_S = 60.0
BARE = """
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static("BARE-FIRST-FRAME")

Bare().run()
"""


def first_frame_s(argv: list[str], marker: bytes, env: dict[str, str]) -> float:
    """Seconds from spawn until ``marker`` appears on the pty; the child is killed afterwards."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    try:
        while True:
            left = TIMEOUT_S - (time.perf_counter() - t0)
            if left <= 0:
                raise RuntimeError(f"{argv[0]}: no first frame within {TIMEOUT_S:.0f}s; output so far: {seen[-400:]!r}")
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal: it died before painting
                raise RuntimeError(f"{argv[0]} exited before its first frame: {seen[-400:]!r}") from None
            seen += chunk
            if marker in seen:
                return time.perf_counter() - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="counted runs per app (default 7)")
    args = ap.parse_args()

    from core.client import start_engine, stop_engine
    from core.paths import HomePaths

    musubi = shutil.which("musubi", path=str(Path(sys.executable).parent)) or shutil.which("musubi")
    if musubi is None:
        print("musubi is not installed in this environment (pip install -e .)", file=sys.stderr)
        return 1
    with temp_home("mt") as home, tempfile.TemporaryDirectory(prefix="mtcfg") as cfg:
        paths = HomePaths.resolve(home)
        start_engine(paths)
        try:
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("COLORTERM", "NO_COLOR", "TEXTUAL", "MUSUBI_TENANT")
            }
            env.update(TERM="xterm-256color", MUSUBI_HOME=str(home), MUSUBI_CONFIG_DIR=cfg)
            apps = {
                "bare Textual app (one Static)": ([sys.executable, "-c", BARE], b"BARE-FIRST-FRAME"),
                "musubi (CLI → TUI)": ([musubi], b"Dashboard"),
                "tui.app.run() without the CLI": ([sys.executable, "-c", "import tui.app as a; a.run()"], b"Dashboard"),
            }
            times: dict[str, list[float]] = {name: [] for name in apps}
            for i in range(args.runs + 1):  # run 0 of each is the warm-up
                for name, (argv, marker) in apps.items():
                    t = first_frame_s(argv, marker, env)
                    if i:
                        times[name].append(t)
        finally:
            stop_engine(paths)

    bare = median(times["bare Textual app (one Static)"])
    rows = []
    for name, ts in times.items():
        rows.append([name, len(ts), min(ts) * 1000, median(ts) * 1000, max(ts) * 1000, f"{median(ts) / bare:.2f}×"])
    print(
        table(
            "Start to first painted frame (pty 80×24, TERM=xterm-256color), ms",
            ["app", "runs", "min", "median", "max", "÷ bare"],
            rows,
        )
    )
    ratio = median(times["musubi (CLI → TUI)"]) / bare
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"musubi / bare (medians): {ratio:.2f}× — {verdict} the target of ≤ {TARGET}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
