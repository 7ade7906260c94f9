"""The real terminal path SSH users take: the app inside tmux at 80×24, TERM=xterm-256color, no COLORTERM.

Keys go in with ``tmux send-keys`` and the screen comes back with ``capture-pane``,
so this covers the real driver, escape-sequence parsing of F-keys and colour
detection without COLORTERM.  Needs the ``tmux`` system package (Debian/Ubuntu:
``apt-get install tmux``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import HomePaths

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed: install the 'tmux' system package (apt-get install tmux) to run this test"
)
DEADLINE_S = 30.0  # a hang guard, not a speed check


class Tmux:
    def __init__(self, server: str) -> None:
        self.server = server
        self.exit_file = Path()

    def __call__(self, *args: str) -> str:
        return subprocess.run([str(TMUX), "-L", self.server, *args], capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "musubi")

    def wait_for(self, *needles: str) -> str:
        end = time.monotonic() + DEADLINE_S
        text = ""
        while time.monotonic() < end:
            text = self.screen()
            if all(n in text for n in needles):
                return text
            time.sleep(0.1)
        raise AssertionError(f"screen never showed {needles!r}; last screen:\n{text}")

    def wait_until_gone(self, needle: str) -> None:
        end = time.monotonic() + DEADLINE_S
        while needle in (text := self.screen()):
            assert time.monotonic() < end, f"screen kept showing {needle!r}:\n{text}"
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "musubi", *keys)


@pytest.fixture
def tmux(engine_home: HomePaths, tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(f"musubi-test-{os.getpid()}")
    # Some tmux builds do not report #{pane_dead_status}; the command writes its own.
    t.exit_file = tmp_path / "exit-status"
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g remain-on-exit on\nset -g status off\n")
    app = f"{sys.executable} -c 'import sys; from tui.app import run; sys.exit(run())'"
    command = (
        f"env -u COLORTERM -u NO_COLOR -u TERM_PROGRAM TERM=xterm-256color "
        f"MUSUBI_HOME={engine_home.home} MUSUBI_CONFIG_DIR={tmp_path} {app}"
    )
    command = f"{command}; echo exit=$? > {t.exit_file}"
    t("-f", str(conf), "new-session", "-d", "-s", "musubi", "-x", "80", "-y", "24", "-c", os.getcwd(), command)
    try:
        yield t
    finally:
        subprocess.run([str(TMUX), "-L", t.server, "kill-server"], capture_output=True)


def test_app_under_tmux_at_80x24_without_colorterm(tmux: Tmux) -> None:
    screen = tmux.wait_for("1 Dashboard", "engine connected", "tokens/day")
    assert len(screen.splitlines()[0]) <= 80

    tmux.keys("6")
    tmux.wait_for("Members & roles", "New tenant", "default")

    tmux.keys("F12")
    debug = tmux.wait_for("Debug info", "colour system")
    assert "256 (TERM=xterm-256color" in debug  # detected from TERM alone, as over SSH
    assert "80×24" in debug
    tmux.keys("Escape")
    # Wait for the dialog to close: a key sent within ESCDELAY of Escape would arrive as alt+key.
    tmux.wait_until_gone("Debug info")

    tmux.keys("3")
    # Focus is in the query box (F7 below switches from there); the test runs outside any registered
    # project, so the real engine's index status is a 404 for the project and the screen says so.
    tmux.wait_for("Esc: leave the query box, then 1-6 switch screens", "No project here")

    tmux.keys("F7")
    tmux.wait_for("Members & roles")
    tmux.keys("F2")
    tmux.wait_for("Engine", "Tenant", "Quotas")

    tmux.keys("q")
    end = time.monotonic() + DEADLINE_S
    while tmux("display-message", "-p", "-t", "musubi", "#{pane_dead}").strip() != "1":
        assert time.monotonic() < end, f"app did not quit on q; screen:\n{tmux.screen()}"
        time.sleep(0.1)
    assert tmux.exit_file.read_text().strip() == "exit=0"
