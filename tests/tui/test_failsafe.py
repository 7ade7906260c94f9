"""How the app ends unasked: a crash exits 1 with a crash log; a terminal that hung up ends the app.

The pty tests run the app as users do, in a child process on a pseudo-terminal, and
read what reached the terminal.  Waits are polling loops with generous deadlines (a
hang guard), never assertions about speed.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.paths import HomePaths
from tests.tui.conftest import wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.driver import TerminalOutput
from tui.failsafe import (
    CRASH_EXIT,
    TERMINAL_LOST_EXIT,
    TerminalWatch,
    crash_log_dirs,
    write_crash_log,
)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0

CRASHING_CHILD = """
import sys
from core.paths import HomePaths
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp, run_app

class Crashing(MusubiApp):
    def on_ready(self) -> None:
        self.set_timer(0.2, self.boom)  # after the first frame: the terminal is in application mode

    def boom(self) -> None:
        raise RuntimeError("boom for the crash test")

api = FakeEngineApi()
api.paths = HomePaths.resolve(sys.argv[1])
sys.exit(run_app(Crashing(fake_ctx(api))))
"""


class Child:
    """A process on a fresh pseudo-terminal (80×24) that is its controlling terminal."""

    def __init__(self, argv: list[str], ignore_sighup: bool = False) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.attrs_before = termios.tcgetattr(self.slave)
        self.output = b""

        def setup() -> None:  # runs in the child, after setsid()
            if ignore_sighup:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as make, nohup-like wrappers or shells may
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        env.pop("COLORTERM", None)
        self.proc = subprocess.Popen(
            argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, env=env, cwd=ROOT,
            start_new_session=True, preexec_fn=setup,
        )

    def read_until(self, done: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + DEADLINE_S
        while not done():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; output so far: {self.output[-400:]!r}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the child closed its side
                    if self.proc.poll() is not None:
                        return

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.close()


# -- crashes ------------------------------------------------------------------------------


async def test_an_uncaught_exception_sets_exit_code_1_and_writes_a_crash_log(tmp_path: Path) -> None:
    api = FakeEngineApi()
    api.paths = HomePaths.resolve(tmp_path / "home")
    app = MusubiApp(fake_ctx(api))
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
            app.call_later(lambda: 1 / 0)
            await pilot.pause(0.2)
    assert app.return_code == CRASH_EXIT
    assert app.crash_log is not None and app.crash_log.parent == api.paths.logs
    log = app.crash_log.read_text()
    assert "ZeroDivisionError: division by zero" in log and "Traceback (most recent call last)" in log
    assert "tenant / user   acme / alice" in log  # the F12 facts, for the bug report


def test_a_crash_in_a_real_terminal_exits_1_restores_it_and_names_the_log(tmp_path: Path, children: list[Child]) -> None:
    home = tmp_path / "h"
    child = Child([sys.executable, "-c", CRASHING_CHILD, str(home)])
    children.append(child)
    child.read_until(lambda: child.proc.poll() is not None, "the crashed app to exit")
    child.read_until(lambda: b"bug report" in child.output, "the crash message")
    assert child.proc.returncode == CRASH_EXIT
    # Clean terminal: line discipline as before, alternate screen left, cursor shown again,
    # and the message printed after that (on the user's normal screen), with no traceback.
    assert termios.tcgetattr(child.slave) == child.attrs_before
    text = child.output.decode(errors="replace")
    tail = text[text.rindex("\x1b[?1049l"):]
    assert "\x1b[?25h" in tail and "Traceback" not in text
    assert "musubi: the workstation stopped on an unexpected error: RuntimeError: boom for the crash test" in tail
    logs = list((home / "logs").glob("tui-crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in tail.replace("\r\n", "")
    assert "in boom\nRuntimeError: boom for the crash test" in logs[0].read_text()


def test_the_crash_log_falls_back_when_the_home_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    dirs = [blocked / "logs", tmp_path / "fallback"]
    path = write_crash_log(ValueError("x"), dirs, lambda: "facts")
    assert path is not None and path.parent == tmp_path / "fallback"
    again = write_crash_log(KeyError("y"), dirs, lambda: 1 / 0, path)  # broken facts never stop the log
    assert again == path
    text = path.read_text()
    assert "ValueError: x" in text and "KeyError: 'y'" in text and "debug facts unavailable: ZeroDivisionError" in text
    assert write_crash_log(ValueError("x"), [blocked / "a"], lambda: "") is None
    assert crash_log_dirs(tmp_path)[0] == tmp_path and len(crash_log_dirs(None)) == 2


# -- a terminal that goes away without SIGHUP ---------------------------------------------


def test_terminal_watch_notices_a_hang_up_and_ignores_pipes() -> None:
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        watch = TerminalWatch([slave, r])
        assert watch.fds == [slave] and not watch.gone()
        os.close(master)
        assert watch.gone()
    finally:
        for fd in (slave, r, w):
            os.close(fd)
    assert not TerminalWatch([]).gone()


@pytest.mark.parametrize("moment", ["while drawing", "when idle"])
def test_musubi_exits_when_its_terminal_goes_away_with_sighup_ignored(engine_home: HomePaths, children: list[Child], moment: str) -> None:
    child = Child([sys.executable, "-m", "tui", "--home", str(engine_home.home)], ignore_sighup=True)
    children.append(child)
    child.read_until(lambda: b"engine connected" in child.output, "the first frames, connected to the engine")
    if moment == "when idle":
        quiet_since = [time.monotonic(), len(child.output)]

        def quiet() -> bool:  # no output for a second: nothing left to draw
            if len(child.output) != quiet_since[1]:
                quiet_since[:] = [time.monotonic(), len(child.output)]
            return time.monotonic() - quiet_since[0] > 1.0

        child.read_until(quiet, "the app to stop drawing")
    # The terminal goes away (a tmux pane killed, an SSH link lost) while the output is
    # unread: the kernel hangs the terminal up, and the SIGHUP it sends is ignored.
    os.close(child.master)
    child.master = -1
    end = time.monotonic() + DEADLINE_S
    while child.proc.poll() is None and time.monotonic() < end:
        time.sleep(0.1)
    assert child.proc.poll() is not None, "musubi kept running after its terminal went away"
    assert child.proc.returncode == TERMINAL_LOST_EXIT


def test_terminal_output_drops_writes_once_the_terminal_is_gone() -> None:
    class Dead(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

    out = TerminalOutput(Dead())
    assert out.write("frame") == 5 and out.lost  # no exception: the writer thread must live on
    out.flush()
    assert not out.isatty()
    alive = io.StringIO()
    ok = TerminalOutput(alive)
    ok.write("x")
    ok.flush()
    assert alive.getvalue() == "x" and not ok.lost
