"""How the workstation ends when nobody asked it to: a crash, or a terminal that went away.

*A crash* (an exception no screen handled) ends the app with exit code 1.  The
traceback, with the F12 debug facts above it, goes to a crash log under
``$MUSUBI_HOME/logs`` (the folder the engine's logs already use; the platform's user
log dir, then the temp dir, when that one cannot be written), and the terminal gets
one short message naming the file instead of a screenful of traceback.

*A lost terminal*: when the terminal goes away and no SIGHUP reaches the app (a
tmux pane killed while ``make run`` shields its child, any parent that ignores the
hang-up for it), Textual's input thread reads end-of-file in a loop forever, at
60–100 % CPU.  :class:`TerminalWatch` asks the kernel whether the terminal hung up
(``poll`` reports ``POLLHUP`` without reading a byte of input) and the app then ends
as a SIGHUP would have ended it, with exit code 129.
"""

from __future__ import annotations

import os
import select
import tempfile
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

CRASH_EXIT = 1
TERMINAL_LOST_EXIT = 129  # what a shell reports for a process ended by SIGHUP (128 + 1)
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def crash_log_dirs(logs: Path | None) -> list[Path]:
    """Where a crash log may go, best first: ``$MUSUBI_HOME/logs``, the user log dir, the temp dir."""
    import platformdirs

    dirs = [logs] if logs is not None else []
    return [*dirs, Path(platformdirs.user_log_dir("musubi", appauthor=False)), Path(tempfile.gettempdir())]


def write_crash_log(error: BaseException, dirs: Iterable[Path], facts: Callable[[], str], path: Path | None = None) -> Path | None:
    """Append ``error``'s traceback to ``path``, or to a new log in the first writable dir.

    ``facts`` (the debug facts) is called inside a guard: a crash log must never fail
    because describing the app failed.  Returns the file written, or None if none could be.
    """
    try:
        header = facts()
    except Exception as exc:  # describing a broken app may fail too; the traceback matters more
        header = f"(debug facts unavailable: {type(exc).__name__}: {exc})"
    now = datetime.now(UTC)
    text = (
        f"musubi workstation crash at {now:%Y-%m-%d %H:%M:%S} UTC, pid {os.getpid()}\n\n{header}\n\n"
        + "".join(traceback.format_exception(error))
        + "\n"
    )
    candidates = [path] if path is not None else [d / f"tui-crash-{now:%Y%m%d-%H%M%S}-{os.getpid()}.log" for d in dirs]
    for candidate in candidates:
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with open(candidate, "a", encoding="utf-8") as f:
                f.write(text)
            return candidate
        except OSError:
            continue
    return None


def crash_message(error: BaseException, log: Path | None) -> str:
    """The few lines printed to the terminal after a crash."""
    where = f"The traceback is in {log}" if log else "No crash log could be written (no writable folder)"
    return (
        f"musubi: the workstation stopped on an unexpected error: {type(error).__name__}: {error}\n"
        f"{where}; please attach it to a bug report. The engine and your data are unaffected."
    )


class TerminalWatch:
    """Tells whether the terminal the app started on has hung up, without reading from it.

    The descriptors are remembered at start: once hung up, a tty no longer answers
    ``isatty``.  Pipes and files are not watched (a test harness, a recording).
    """

    def __init__(self, fds: Iterable[int]) -> None:
        self.fds = sorted({fd for fd in fds if _isatty(fd)})

    def gone(self) -> bool:
        if not self.fds:
            return False
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, 0)  # no events asked for: only hang-up, error and closed are reported
        return any(events & _GONE for _fd, events in poller.poll(0))


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
