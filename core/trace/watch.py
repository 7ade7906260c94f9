"""Change detection for the automatic re-scan: a file watcher per repository, or polling.

The Trace screen asks the engine every few seconds whether the repository changed
(``/v1/trace?view=summary``).  Without a watcher, each ask is an incremental scan:
a stat of every listed file.  With one, the engine knows whether anything changed
since its last scan and answers from memory when nothing did.

The watcher is watchfiles' Rust notifier (inotify, FSEvents, ...), run in a daemon
thread that waits at most ``STEP_MS`` between looks at its stop event, so stopping
it (:meth:`RepoWatch.stop`, called on the engine's graceful stop) ends the thread
promptly.  Where watching is unavailable — the notifier fails to start (inotify
limits, an unsupported file system), too many repositories are watched already, or
``MUSUBI_TRACE_WATCH=0`` — the repository is polled as before: every ask re-scans.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

ENV = "MUSUBI_TRACE_WATCH"  # "0" turns watching off (polling only)
MAX_WATCHED = 8  # repositories watched at once; more are polled (each watch costs OS watches)
DEBOUNCE_MS = 400  # changes are grouped over at most this long before they count
STEP_MS = 50  # how often the notifier looks at the stop event (bounds how long stop takes)
JOIN_S = 5.0  # how long stop waits for the thread (it ends within a step or two)


class Notifier(Protocol):
    """What :class:`RepoWatch` needs of watchfiles' ``RustNotify``."""

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any: ...

    def close(self) -> None: ...


def rust_notifier(root: Path) -> Notifier:
    """Start watching ``root`` recursively; raises when the OS will not (e.g. inotify watch limit)."""
    # Imported here: only an engine that serves the Trace screen pays for it.
    from watchfiles._rust_notify import RustNotify

    return RustNotify([str(root)], False, False, 300, True, True)


def _relevant() -> Callable[[int, str], bool]:
    """watchfiles' default filter: .git, __pycache__, node_modules, editor swap files do not count."""
    from watchfiles import Change, DefaultFilter

    f = DefaultFilter()
    return lambda change, path: f(Change(change), path)


class RepoWatch:
    """A repository's change counter, bumped by a watcher thread; ``watching`` says whether it is trusted."""

    def __init__(self, root: Path, make: Callable[[Path], Notifier] = rust_notifier) -> None:
        self.root = root
        self.version = 0  # bumped after each group of relevant changes
        self.reason: str | None = None  # why this repository is polled, when it is
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._notifier: Notifier | None = make(root)
        except Exception as exc:  # noqa: BLE001 - any failure to watch means: poll instead
            self._notifier = None
            self.reason = f"file watcher unavailable ({type(exc).__name__}: {exc}); polling instead"
            log.info("trace: %s: %s", root, self.reason)
            return
        self._relevant = _relevant()
        self._thread = threading.Thread(target=self._run, name=f"trace-watch:{root.name}", daemon=True)
        self._thread.start()

    @property
    def watching(self) -> bool:
        """True while the watcher runs: an unchanged version then means an unchanged repository."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def mode(self) -> dict[str, Any]:
        return {"mode": "watch" if self.watching else "poll", "reason": self.reason}

    def _run(self) -> None:
        assert self._notifier is not None
        try:
            while not self._stop.is_set():
                got = self._notifier.watch(DEBOUNCE_MS, STEP_MS, 0, self._stop)
                if got == "stop":
                    break
                if isinstance(got, set) and any(self._relevant(c, p) for c, p in got):
                    self.version += 1  # only this thread writes it; readers compare
        except Exception as exc:  # noqa: BLE001 - a dead watcher degrades to polling, never to stale answers
            self.reason = f"file watcher stopped ({type(exc).__name__}: {exc}); polling instead"
            log.warning("trace: %s: %s", self.root, self.reason)
        finally:
            self._stop.set()  # `watching` turns false before the notifier goes away
            self._notifier.close()

    def stop(self) -> None:
        """End the watcher thread and wait for it (a step or two)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_S)


class Watches:
    """The watched repositories of one engine; :meth:`close` stops them all."""

    def __init__(self, make: Callable[[Path], Notifier] = rust_notifier) -> None:
        self.make = make
        self._watches: dict[Path, RepoWatch] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, root: Path) -> RepoWatch | None:
        """The watch of ``root``, started on first use; None when the repository is to be polled."""
        with self._lock:
            w = self._watches.get(root)
            if w is not None or self._closed or os.environ.get(ENV) == "0":
                return w
            if sum(1 for x in self._watches.values() if x.watching) >= MAX_WATCHED:
                return None
            w = self._watches[root] = RepoWatch(root, self.make)
            return w

    def peek(self, root: Path) -> RepoWatch | None:
        """The watch of ``root`` if one was started (never starts one)."""
        with self._lock:
            return self._watches.get(root)

    def threads(self) -> list[threading.Thread]:
        """The watcher threads still alive (for tests: none after :meth:`close`)."""
        with self._lock:
            return [w._thread for w in self._watches.values() if w._thread is not None and w._thread.is_alive()]

    def close(self) -> None:
        """Stop every watcher (the engine's graceful stop); later requests poll."""
        with self._lock:
            self._closed = True
            watches, self._watches = list(self._watches.values()), {}
        for w in watches:
            w.stop()
