"""Textual's Unix terminal driver, made to end cleanly when the terminal hangs up.

Imported only when Textual picks its ``LinuxDriver`` (Linux and macOS), see
:meth:`tui.app.MusubiApp.get_driver_class`.

Textual writes to the terminal from one thread fed by a bounded queue.  After a
hang-up every write fails with EIO; the first failure ends that thread, the queue
fills, and the next write blocks the app for good — at the latest when it restores
the terminal on its way out.  (A hang-up also sends SIGCONT, which makes Textual
start a second writer, but the blocked write still waits on the first one's queue.)
:class:`TerminalOutput` drops what cannot be written instead, so an app that
notices the lost terminal (:class:`tui.failsafe.TerminalWatch`) can still exit.
"""

from __future__ import annotations

from typing import Any, TextIO

from textual.drivers.linux_driver import LinuxDriver


class TerminalOutput:
    """The terminal's output stream, dropping writes once the terminal is gone.

    The first failed write or flush marks it :attr:`lost`; nothing is written after
    that, since nobody could read it.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self.stream.write(text)
            except OSError:
                self.lost = True
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self.stream.flush()
            except OSError:
                self.lost = True

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return not self.lost and self.stream.isatty()


class HangupSafeDriver(LinuxDriver):
    """Textual's ``LinuxDriver`` writing through :class:`TerminalOutput`."""

    def __init__(self, app: Any, *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        if self._file is not None:
            self._file = TerminalOutput(self._file)  # type: ignore[assignment]  # duck-typed: write, flush, fileno
